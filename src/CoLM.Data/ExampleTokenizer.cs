namespace CoLM.Data;

/// <summary>Turns a raw example into the [BOS] prompt target [EOS] layout with prompt-masked loss.</summary>
public static class ExampleTokenizer
{
    /// <summary>The smallest maxLength that still fits BOS plus one loss-bearing token.</summary>
    public const int MinMaxLength = 2;

    public static TokenizedExample Tokenize(RawExample raw, int id, int sourceId, ITokenizer tok, int maxLength)
    {
        ArgumentNullException.ThrowIfNull(raw);
        ArgumentNullException.ThrowIfNull(tok);
        ValidateMaxLength(maxLength);

        var prompt = tok.Encode(raw.Prompt);
        var target = tok.Encode(raw.Target);
        var answer = target.Length + 1; // target + EOS: what the loss is taken on
        var full = 1 + prompt.Length + answer;

        if (full <= maxLength)
        {
            return new TokenizedExample(id, sourceId, Layout(tok, prompt, 0, target, answer), 1 + prompt.Length, false);
        }

        if (1 + prompt.Length < maxLength)
        {
            // Cutting from the right still leaves some target: the usual SFT truncation.
            var kept = maxLength - 1 - prompt.Length;
            return new TokenizedExample(id, sourceId, Layout(tok, prompt, 0, target, kept), 1 + prompt.Length, true);
        }

        // A right cut would leave nothing to learn from; drop the prompt's head instead, since
        // the end of a prompt (the actual question) is what the answer depends on most.
        var answerKept = Math.Min(answer, maxLength / 2);
        var promptKept = maxLength - 1 - answerKept;
        var tokens = Layout(tok, prompt, prompt.Length - promptKept, target, answerKept);
        return new TokenizedExample(id, sourceId, tokens, 1 + promptKept, true);
    }

    internal static void ValidateMaxLength(int maxLength)
    {
        if (maxLength < MinMaxLength)
        {
            throw new DataFormatException("maxLength", $"must be at least {MinMaxLength} (got {maxLength})");
        }
    }

    /// <summary>[BOS] + prompt[promptStart..] + first answerKept tokens of (target + EOS).</summary>
    private static int[] Layout(ITokenizer tok, int[] prompt, int promptStart, int[] target, int answerKept)
    {
        var promptKept = prompt.Length - promptStart;
        var tokens = new int[1 + promptKept + answerKept];
        tokens[0] = tok.BosId;
        Array.Copy(prompt, promptStart, tokens, 1, promptKept);
        var fromTarget = Math.Min(answerKept, target.Length);
        Array.Copy(target, 0, tokens, 1 + promptKept, fromTarget);
        if (answerKept > target.Length)
        {
            tokens[^1] = tok.EosId;
        }

        return tokens;
    }
}
