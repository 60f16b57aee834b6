namespace CoLM.Selection;

/// <summary>
/// One pool of L examples as the coordinator sees it after merging trainer sketches (COLM.md step 4).
/// </summary>
/// <param name="ExampleIds">Dataset ids of the L pool examples.</param>
/// <param name="SourceIds">Source id of each pool example.</param>
/// <param name="Losses">Per-example loss at the current parameters (for loss-based baselines and telemetry).</param>
/// <param name="Coefficients">Row-major [L x Probes] zeroth-order scalars c_ik; rows of small-source examples may be all zero because they are never sketched (under source balancing). Empty with Probes = 0 when <see cref="Features"/> are given.</param>
/// <param name="ProbeSeed">Seed from which every probe direction z_k is regenerated.</param>
/// <param name="Probes">K, the number of probe directions.</param>
/// <param name="FeatureDim">Size of each z_k, i.e. of the gradient feature g_i.</param>
public sealed record PoolSketch(
    int[] ExampleIds,
    int[] SourceIds,
    float[] Losses,
    float[] Coefficients,
    long ProbeSeed,
    int Probes,
    int FeatureDim)
{
    /// <summary>
    /// Optional dense row-major [L x FeatureDim] gradient features g_i (the `exact` feature). When
    /// set, they are used as they are instead of rebuilding g_i from <see cref="Coefficients"/>
    /// (which may then be empty with <see cref="Probes"/> = 0). Rows a method never looks at (small
    /// sources under source balancing) may be left zero. NaN/infinite values count the row as
    /// degenerate and read as 0.
    /// </summary>
    public float[]? Features { get; init; }

    /// <summary>L, the number of pool examples.</summary>
    public int Count => ExampleIds.Length;

    /// <summary>Throws ArgumentException when the arrays disagree with each other or with the selector.</summary>
    internal void Validate(int expectedFeatureDim)
    {
        ArgumentNullException.ThrowIfNull(ExampleIds);
        ArgumentNullException.ThrowIfNull(SourceIds);
        ArgumentNullException.ThrowIfNull(Losses);
        ArgumentNullException.ThrowIfNull(Coefficients);
        int l = ExampleIds.Length;
        if (SourceIds.Length != l)
            throw new ArgumentException($"Pool has {l} example ids but {SourceIds.Length} source ids.");
        if (Losses.Length != l)
            throw new ArgumentException($"Pool has {l} example ids but {Losses.Length} losses.");
        if (Probes < 0)
            throw new ArgumentException($"Pool probe count must not be negative; got {Probes}.");
        if (Coefficients.Length != (long)l * Probes)
            throw new ArgumentException(
                $"Pool coefficients must be [L x Probes] = {l} x {Probes} = {(long)l * Probes}; got {Coefficients.Length}.");
        if (FeatureDim != expectedFeatureDim)
            throw new ArgumentException(
                $"Pool feature dimension {FeatureDim} differs from the selector's {expectedFeatureDim}.");
        if (Features is not null && Features.Length != (long)l * FeatureDim)
            throw new ArgumentException(
                $"Pool features must be [L x FeatureDim] = {l} x {FeatureDim} = {(long)l * FeatureDim}; got {Features.Length}.");
        foreach (int s in SourceIds)
            if (s < 0) throw new ArgumentException($"Source ids must not be negative; got {s}.");
    }
}
