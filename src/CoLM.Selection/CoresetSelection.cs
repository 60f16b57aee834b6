namespace CoLM.Selection;

/// <summary>The batch chosen from one pool.</summary>
/// <param name="ExampleIds">
/// Dataset ids to train on. Source-balanced methods: kept small-source examples first, then the
/// selected ones by source id, each source in pool order. Unbalanced methods, Random and BigBatch:
/// pool order.
/// </param>
/// <param name="Weights">
/// Per-example loss weight, aligned with <paramref name="ExampleIds"/>: 1.0, except under
/// <see cref="CoresetWeighting.Medoid"/> with Colm (the size of each selected example's cluster).
/// </param>
/// <param name="SelectedPerSource">How many of <paramref name="ExampleIds"/> come from each source, indexed by source id (kept ones included).</param>
/// <param name="KeptSmall">How many small-source examples were kept without selection.</param>
/// <param name="DegenerateFeatures">
/// Candidate pool examples (large-source ones when source-balanced, all when not) whose gradient
/// feature had NaN/infinite values or was all zero; they stayed candidates with zeros in place.
/// Always 0 for methods that do not read features.
/// </param>
public sealed record CoresetSelection(
    int[] ExampleIds,
    float[] Weights,
    int[] SelectedPerSource,
    int KeptSmall,
    int DegenerateFeatures)
{
    /// <summary>
    /// Small-source pool examples left out because they alone would have filled more than b - R
    /// (<see cref="SourceBalance"/>); 0 whenever they fit, and for methods without source balancing.
    /// </summary>
    public int SmallLeftOut { get; init; }
}
