namespace CoLM.Selection;

/// <summary>
/// How a pool is split between small and large sources (COLM.md steps 2-3).
/// </summary>
/// <param name="Enabled">
/// False: no source is kept whole and there are no per-source budgets (one group, the whole pool).
/// </param>
/// <param name="LargeReserve">
/// rho: the share of b always left to the large sources, so that small sources which alone fill
/// the budget cannot starve them. The reserve is R = max(large sources in the pool, ceil(rho * b)),
/// never more than the pool's large examples. While the small-source examples fit in b - R they
/// are all kept (the paper's rule); otherwise a seeded sample of b - R of them is kept, shared in
/// proportion to each small source's pool count with at least one per source present.
/// </param>
public sealed record SourceBalance(bool Enabled, double LargeReserve)
{
    public const double DefaultLargeReserve = 0.25;

    public static SourceBalance Default { get; } = new(true, DefaultLargeReserve);

    public static SourceBalance Off { get; } = new(false, DefaultLargeReserve);

    /// <summary>R for a pool with <paramref name="largeSources"/> large sources holding <paramref name="largeExamples"/> examples.</summary>
    public int Reserve(int budget, int largeSources, int largeExamples)
    {
        // Rounded first: 0.1 * 30 is 3.0000000000000004 in doubles and must reserve 3, not 4.
        int share = (int)Math.Ceiling(Math.Round(LargeReserve * budget, 9));
        return Math.Min(Math.Min(budget, largeExamples), Math.Max(largeSources, share));
    }
}
