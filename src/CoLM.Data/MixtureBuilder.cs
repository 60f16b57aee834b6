using CoLM.Determinism;
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

    /// <summary>Examples held in memory per JSONL training split; the rest is re-read from the file when needed.</summary>
    public const int StreamedCacheCapacity = 4096;

    /// <param name="formatPrompt">Applied to every prompt before tokenizing (e.g. the Alpaca template); null keeps prompts as they are.</param>
    public static DataMixture FromJsonl(string path, JsonlFields fields, ITokenizer tok, int maxLength, int heldoutPerSource, long seed,
        Func<string, string>? formatPrompt = null)
    {
        ArgumentNullException.ThrowIfNull(fields);
        JsonlReader.ValidateFields(fields);
        return FromJsonlLines(path, (line, origin) => JsonlLineParser.Parse(line, origin, fields), tok, maxLength, heldoutPerSource, seed, formatPrompt);
    }

    /// <summary>
    /// A mixture over a JSONL file whose lines <paramref name="parse"/> turns into examples (MathInstruct rows, or
    /// classification rows through <see cref="ClassificationJsonl.LineParser"/>). The file is streamed once (each
    /// example parsed and tokenized, then dropped, keeping its source, a 64-bit hash of its prompt for the held-out
    /// split, and whether it was truncated) and is then read by line through its cached <see cref="JsonlIndex"/>:
    /// the training split tokenizes an example when asked for it (<see cref="StreamedCacheCapacity"/> kept), the
    /// small held-out split is held. Same examples, ids and split as reading the whole file would give, bar a
    /// 64-bit prompt-hash collision.
    /// </summary>
    public static DataMixture FromJsonlLines(string path, Func<string, string, RawExample> parse, ITokenizer tok, int maxLength,
        int heldoutPerSource, long seed, Func<string, string>? formatPrompt = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(parse);
        ArgumentNullException.ThrowIfNull(tok);
        ExampleTokenizer.ValidateMaxLength(maxLength);
        if (heldoutPerSource < 0)
        {
            throw new DataFormatException(nameof(heldoutPerSource), $"must not be negative (got {heldoutPerSource})");
        }

        if (!File.Exists(path))
        {
            throw new DataFormatException(path, "file not found");
        }

        // Pass 1, streaming: per line its source (first-seen number), prompt hash and truncation.
        var firstSeen = new Dictionary<string, int>(StringComparer.Ordinal);
        var sourceOfLine = new List<int>();
        var promptKeys = new List<ulong>();
        var truncated = new List<bool>();
        foreach (var raw in JsonlReader.ReadLines(path, parse))
        {
            var e = formatPrompt is null ? raw : raw with { Prompt = formatPrompt(raw.Prompt) };
            if (!firstSeen.TryGetValue(e.Source, out var source)) firstSeen.Add(e.Source, source = firstSeen.Count);
            sourceOfLine.Add(source);
            promptKeys.Add(StableHash.Of(e.Prompt));
            truncated.Add(ExampleTokenizer.Tokenize(e, 0, 0, tok, maxLength).Truncated);
        }

        var index = JsonlIndex.Open(path);
        if (index.Count != sourceOfLine.Count)
        {
            throw new DataFormatException(path, $"its line index has {index.Count} examples, reading it gave {sourceOfLine.Count}; was it changed meanwhile?");
        }

        var names = firstSeen.Keys.Order(StringComparer.Ordinal).ToArray();
        var idOfFirstSeen = new int[names.Length];
        for (int id = 0; id < names.Length; id++) idOfFirstSeen[firstSeen[names[id]]] = id;
        var firstSeenNames = firstSeen.OrderBy(p => p.Value).Select(p => p.Key).ToArray();
        var isHeldout = HeldoutSplitter.Choose(sourceOfLine.Count, i => firstSeenNames[sourceOfLine[i]], i => promptKeys[i], heldoutPerSource, seed);

        // Both splits keep file order, so Ids are easy to trace back to lines.
        var trainLines = new List<int>();
        var heldoutRaw = new List<RawExample>();
        var trainCounts = new int[names.Length];
        var truncatedPerSource = new int[names.Length];
        for (int line = 0; line < isHeldout.Length; line++)
        {
            int source = idOfFirstSeen[sourceOfLine[line]];
            if (truncated[line]) truncatedPerSource[source]++;
            if (isHeldout[line])
            {
                heldoutRaw.Add(StreamedJsonlSplit.Raw(index, line, parse, formatPrompt));
                continue;
            }
            trainLines.Add(line);
            trainCounts[source]++;
        }

        var idOf = names.Select((name, id) => (name, id)).ToDictionary(p => p.name, p => p.id, StringComparer.Ordinal);
        var heldout = heldoutRaw.Select((e, i) => ExampleTokenizer.Tokenize(e, i, idOf[e.Source], tok, maxLength)).ToArray();
        var trainSources = trainLines.Select(line => idOfFirstSeen[sourceOfLine[line]]).ToArray();
        var train = new StreamedJsonlSplit(index, parse, formatPrompt, tok, maxLength, trainLines.ToArray(), trainSources, StreamedCacheCapacity);
        return DataMixture.Streamed(names, train, trainCounts, trainSources, heldout, heldoutRaw.ToArray(), maxLength, truncatedPerSource, tok);
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
