namespace CoLM.Data;

/// <summary>
/// A tokenized train/held-out split over named sources. Source ids index SourceNames, which are
/// sorted ordinally so ids are stable for the same set of sources regardless of input order.
/// </summary>
public sealed class DataMixture
{
    public DataMixture(
        IReadOnlyList<string> sourceNames,
        IReadOnlyList<TokenizedExample> train,
        IReadOnlyList<TokenizedExample> heldout,
        IReadOnlyList<RawExample> heldoutRaw,
        int maxLength)
        : this(sourceNames, CheckedTrain(sourceNames, train, heldout, heldoutRaw, maxLength), CountPerSource(train, sourceNames.Count),
            train.Select(e => e.SourceId).ToArray(), heldout, heldoutRaw, maxLength, TruncatedPerSourceOf(train.Concat(heldout), sourceNames.Count))
    {
    }

    /// <summary>
    /// The one constructor that sets the mixture; its training counts come precomputed because a streamed training split
    /// (see MixtureBuilder.FromJsonlLines) would be read in full to count them.
    /// </summary>
    private DataMixture(
        IReadOnlyList<string> sourceNames,
        IReadOnlyList<TokenizedExample> train,
        IReadOnlyList<int> trainCountPerSource,
        IReadOnlyList<int> trainSourceIds,
        IReadOnlyList<TokenizedExample> heldout,
        IReadOnlyList<RawExample> heldoutRaw,
        int maxLength,
        IReadOnlyList<int> truncatedPerSource)
    {
        if (heldoutRaw.Count != heldout.Count)
        {
            throw new ArgumentException("heldoutRaw must parallel heldout", nameof(heldoutRaw));
        }

        ValidateSplit(heldout, sourceNames.Count, maxLength, nameof(heldout));
        SourceNames = sourceNames;
        Train = train;
        Heldout = heldout;
        HeldoutRaw = heldoutRaw;
        MaxLength = maxLength;
        TrainCountPerSource = trainCountPerSource;
        TrainSourceIds = trainSourceIds;
        HeldoutCountPerSource = CountPerSource(heldout, sourceNames.Count);
        TruncatedPerSource = truncatedPerSource;
        TruncatedCount = truncatedPerSource.Sum();
    }

    internal static DataMixture Streamed(
        IReadOnlyList<string> sourceNames, IReadOnlyList<TokenizedExample> train, IReadOnlyList<int> trainCountPerSource,
        IReadOnlyList<int> trainSourceIds, IReadOnlyList<TokenizedExample> heldout, IReadOnlyList<RawExample> heldoutRaw, int maxLength,
        IReadOnlyList<int> truncatedPerSource, ITokenizer tokenizer) =>
        new(sourceNames, train, trainCountPerSource, trainSourceIds, heldout, heldoutRaw, maxLength, truncatedPerSource) { Tokenizer = tokenizer };

    public IReadOnlyList<string> SourceNames { get; }
    public IReadOnlyList<TokenizedExample> Train { get; }
    public IReadOnlyList<TokenizedExample> Heldout { get; }

    /// <summary>The untokenized held-out examples (same index as Heldout), for exact-match
    /// evaluation against the full target even when the tokenized copy was truncated.</summary>
    public IReadOnlyList<RawExample> HeldoutRaw { get; }

    public IReadOnlyList<int> TrainCountPerSource { get; }

    /// <summary>
    /// Sources with held-out examples and no training example (a task evaluated that training never
    /// shows, like the built-in mixture's ood.compose): scored on their own, left out of the means.
    /// </summary>
    public IReadOnlySet<string> HeldoutOnlySources => _heldoutOnly ??= SourceNames.Where((_, id) => TrainCountPerSource[id] == 0).ToHashSet(StringComparer.Ordinal);

    private HashSet<string>? _heldoutOnly;

    /// <summary>
    /// The source id of each training example, without reading the example: what the coordinator needs per pool
    /// example (Train[id].SourceId reads and tokenizes a streamed example).
    /// </summary>
    public IReadOnlyList<int> TrainSourceIds { get; }
    public IReadOnlyList<int> HeldoutCountPerSource { get; }
    public int TruncatedCount { get; }

    /// <summary>Truncated examples per source id, train and held-out together.</summary>
    public IReadOnlyList<int> TruncatedPerSource { get; }
    public int MaxLength { get; }

    /// <summary>The tokenizer the examples were encoded with (its pad id is the one collation uses).</summary>
    public ITokenizer Tokenizer { get; init; } = CharTokenizer.Instance;

    private static void ValidateSplit(IReadOnlyList<TokenizedExample> split, int sourceCount, int maxLength, string name)
    {
        for (var i = 0; i < split.Count; i++)
        {
            var e = split[i];
            if (e.Id != i)
            {
                throw new ArgumentException($"{name}[{i}] has Id {e.Id}; Id must equal its index", name);
            }

            if (e.SourceId < 0 || e.SourceId >= sourceCount)
            {
                throw new ArgumentException($"{name}[{i}] has SourceId {e.SourceId} outside [0, {sourceCount})", name);
            }

            if (e.Tokens.Length > maxLength || e.PromptLength < 1 || e.PromptLength >= e.Tokens.Length)
            {
                throw new ArgumentException($"{name}[{i}] violates the token layout (length {e.Tokens.Length}, prompt {e.PromptLength}, max {maxLength})", name);
            }
        }
    }

    /// <summary>Argument checks of the public constructor, run before any count is taken; returns the checked training split.</summary>
    private static IReadOnlyList<TokenizedExample> CheckedTrain(
        IReadOnlyList<string> sourceNames, IReadOnlyList<TokenizedExample> train, IReadOnlyList<TokenizedExample> heldout,
        IReadOnlyList<RawExample> heldoutRaw, int maxLength)
    {
        ArgumentNullException.ThrowIfNull(sourceNames);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(heldout);
        ArgumentNullException.ThrowIfNull(heldoutRaw);
        ExampleTokenizer.ValidateMaxLength(maxLength);
        ValidateSplit(train, sourceNames.Count, maxLength, nameof(train));
        return train;
    }

    private static int[] TruncatedPerSourceOf(IEnumerable<TokenizedExample> examples, int sourceCount)
    {
        var truncated = new int[sourceCount];
        foreach (var e in examples.Where(e => e.Truncated)) truncated[e.SourceId]++;
        return truncated;
    }

    private static int[] CountPerSource(IReadOnlyList<TokenizedExample> split, int sourceCount)
    {
        var counts = new int[sourceCount];
        foreach (var e in split)
        {
            counts[e.SourceId]++;
        }

        return counts;
    }
}
