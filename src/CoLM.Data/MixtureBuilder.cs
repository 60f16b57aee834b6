namespace CoLM.Data;

/// <summary>Builds a tokenized DataMixture from the synthetic generator or a JSONL file.</summary>
public static class MixtureBuilder
{
    public static DataMixture FromSynthetic(SyntheticMixtureSettings s, ITokenizer tok, int maxLength)
    {
        ExampleTokenizer.ValidateMaxLength(maxLength);
        var train = SyntheticMixture.Generate(s, out var heldout);
        return Build(train, heldout, tok, maxLength);
    }

    /// <param name="formatPrompt">Applied to every prompt before tokenizing (e.g. the Alpaca template); null keeps prompts as they are.</param>
    public static DataMixture FromJsonl(string path, JsonlFields fields, ITokenizer tok, int maxLength, int heldoutPerSource, long seed,
        Func<string, string>? formatPrompt = null)
    {
        ExampleTokenizer.ValidateMaxLength(maxLength);
        if (heldoutPerSource < 0)
        {
            throw new DataFormatException(nameof(heldoutPerSource), $"must not be negative (got {heldoutPerSource})");
        }

        var all = JsonlReader.Read(path, fields).Select(e => formatPrompt is null ? e : e with { Prompt = formatPrompt(e.Prompt) }).ToList();
        var isHeldout = HeldoutSplitter.Choose(all, heldoutPerSource, seed);
        // Both splits keep file order, so Ids are easy to trace back to lines.
        var train = all.Where((_, i) => !isHeldout[i]).ToList();
        var heldout = all.Where((_, i) => isHeldout[i]).ToList();
        return Build(train, heldout, tok, maxLength);
    }

    private static DataMixture Build(IReadOnlyList<RawExample> train, IReadOnlyList<RawExample> heldout, ITokenizer tok, int maxLength)
    {
        ArgumentNullException.ThrowIfNull(tok);
        var names = train.Concat(heldout).Select(e => e.Source).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        var idOf = names.Select((name, id) => (name, id)).ToDictionary(p => p.name, p => p.id, StringComparer.Ordinal);

        TokenizedExample[] Tokenize(IReadOnlyList<RawExample> split) =>
            split.Select((e, i) => ExampleTokenizer.Tokenize(e, i, idOf[e.Source], tok, maxLength)).ToArray();

        return new DataMixture(names, Tokenize(train), Tokenize(heldout), heldout.ToArray(), maxLength) { Tokenizer = tok };
    }
}
