namespace CoLM.Selection;

/// <summary>The two baselines CoLM is measured against (COLM.md "Alternatives").</summary>
internal static class BaselineSelection
{
    /// <summary>A uniform min(b, L) of the pool without replacement, in pool order.</summary>
    public static CoresetSelection Random(PoolSketch pool, int budget, long rngSeed, int slots)
    {
        int[] all = Enumerable.Range(0, pool.Count).ToArray();
        int[] chosen = new SplitMix64(rngSeed, SeedPurpose.RandomBatch).SampleSorted(all, budget);
        return SelectionResult.Build(pool, chosen, slots, keptSmall: 0, degenerate: 0);
    }

    /// <summary>The whole pool, whatever the budget: training at batch L.</summary>
    public static CoresetSelection BigBatch(PoolSketch pool, int slots) =>
        SelectionResult.Build(pool, Enumerable.Range(0, pool.Count).ToArray(), slots, keptSmall: 0, degenerate: 0);
}
