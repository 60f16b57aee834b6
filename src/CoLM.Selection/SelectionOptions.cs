namespace CoLM.Selection;

/// <summary>Settings of the selection step (COLM.md steps 2-7).</summary>
/// <param name="Method">Which selection to run.</param>
/// <param name="SparsifyFraction">Fraction of feature dims kept per source (default 0.01); used when <paramref name="SparsifyCount"/> is not positive.</param>
/// <param name="SparsifyCount">Absolute number of dims h kept per source; overrides the fraction when positive.</param>
/// <param name="Beta1">First-moment decay of the private normalizer history.</param>
/// <param name="Beta2">Second-moment decay of the private normalizer history.</param>
/// <param name="NormalizerEpsilon">Added to sqrt(v_hat) so silent dims do not divide by zero.</param>
public sealed record SelectionOptions(
    SelectionMethod Method,
    double SparsifyFraction,
    int SparsifyCount,
    double Beta1 = 0.9,
    double Beta2 = 0.999,
    double NormalizerEpsilon = 1e-8)
{
    /// <summary>
    /// The loss weight of selected examples. Only <see cref="SelectionMethod.Colm"/> reads it; every
    /// other method weights each example 1.
    /// </summary>
    public CoresetWeighting Weighting { get; init; } = CoresetWeighting.Uniform;

    /// <summary>
    /// True (default): small-source pool examples are kept (COLM.md step 2), the rest of the budget
    /// is split over the large sources in proportion to their pool counts (step 3), and Colm,
    /// SourceBalancedRandom, BigLoss, SmallLoss and GradNorm each choose within each large source to
    /// its budget. False: nothing is kept and there are no per-source budgets; the whole pool is one
    /// group chosen from to min(b, L) (Colm: one normalisation, one top-h mask from the whole
    /// pool's mean feature, one facility location). Random and BigBatch ignore it.
    /// </summary>
    public bool SourceBalancing { get; init; } = true;

    /// <summary>rho, the share of b reserved for large sources when small ones would fill it: see <see cref="SourceBalance.LargeReserve"/>.</summary>
    public double LargeReserve { get; init; } = SourceBalance.DefaultLargeReserve;

    /// <summary>The reference defaults: CoLM, 1% of dims per source.</summary>
    public static SelectionOptions Default { get; } = new(SelectionMethod.Colm, 0.01, 0);

    /// <summary>The number of dims h kept per source for a feature of size <paramref name="featureDim"/>.</summary>
    public int KeptDims(int featureDim)
    {
        if (SparsifyCount > 0) return Math.Min(SparsifyCount, featureDim);
        // Round, not ceiling: 0.01 * 256000 is 2560.0000000000005 in doubles and must stay 2560.
        long h = (long)Math.Round(SparsifyFraction * featureDim, MidpointRounding.AwayFromZero);
        return (int)Math.Clamp(h, 1, featureDim);
    }

    /// <summary>Throws ArgumentException naming the first setting that cannot work.</summary>
    public void Validate()
    {
        if (!Enum.IsDefined(Method))
            throw new ArgumentException($"Unknown selection method {Method}.", nameof(Method));
        if (!Enum.IsDefined(Weighting))
            throw new ArgumentException($"Unknown coreset weighting {Weighting}.", nameof(Weighting));
        if (SparsifyCount <= 0 && !(SparsifyFraction > 0 && SparsifyFraction <= 1))
            throw new ArgumentException(
                $"SparsifyFraction must be in (0, 1] when SparsifyCount is not positive; got {SparsifyFraction}.",
                nameof(SparsifyFraction));
        if (!(Beta1 >= 0 && Beta1 < 1))
            throw new ArgumentException($"Beta1 must be in [0, 1); got {Beta1}.", nameof(Beta1));
        if (!(Beta2 >= 0 && Beta2 < 1))
            throw new ArgumentException($"Beta2 must be in [0, 1); got {Beta2}.", nameof(Beta2));
        if (!(LargeReserve >= 0 && LargeReserve <= 1))
            throw new ArgumentException($"LargeReserve must be in [0, 1]; got {LargeReserve}.", nameof(LargeReserve));
        if (!(NormalizerEpsilon > 0 && double.IsFinite(NormalizerEpsilon)))
            throw new ArgumentException($"NormalizerEpsilon must be positive and finite; got {NormalizerEpsilon}.", nameof(NormalizerEpsilon));
    }
}
