namespace CoLM.Data;

/// <summary>
/// Tokens = [BOS] + prompt + target + [EOS] (possibly truncated). The loss covers
/// Tokens[PromptLength..] only, i.e. the target and EOS, never the prompt.
/// </summary>
public sealed record TokenizedExample(int Id, int SourceId, int[] Tokens, int PromptLength, bool Truncated)
{
    /// <summary>Number of loss-bearing tokens (target + EOS, after truncation).</summary>
    public int TargetLength => Tokens.Length - PromptLength;
}
