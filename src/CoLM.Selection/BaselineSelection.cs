using CoLM.Determinism;
namespace CoLM.Selection;

/// <summary>The baselines CoLM is measured against (COLM.md "Alternatives"). Every one weights each example 1.</summary>
internal static class BaselineSelection
{
    /// <summary>A uniform min(b, L) of the pool without replacement, in pool order. Ignores source balancing.</summary>
    public static CoresetSelection Random(PoolSketch pool, int budget, long rngSeed, int slots)
    {
        int[] all = Enumerable.Range(0, pool.Count).ToArray();
        int[] chosen = RandomStreams.Selection(rngSeed, SelectionPurpose.RandomBatch).SampleSorted(all, budget);
        return SelectionResult.Build(pool, chosen, slots, keptSmall: 0, degenerate: 0);
    }

    /// <summary>The whole pool, whatever the budget: training at batch L. Ignores source balancing.</summary>
    public static CoresetSelection BigBatch(PoolSketch pool, int slots) =>
        SelectionResult.Build(pool, Enumerable.Range(0, pool.Count).ToArray(), slots, keptSmall: 0, degenerate: 0);

    /// <summary>
    /// Balanced: keep small sources, then a uniform random b_q of each large source (one seeded
    /// stream, drawn in source-id order). Unbalanced: exactly <see cref="Random"/>.
    /// </summary>
    public static CoresetSelection SourceBalancedRandom(PoolSketch pool, bool[] isSmallSource, int budget, long rngSeed, SourceBalance balance)
    {
        SelectionGroups groups = SelectionGroups.Plan(pool, isSmallSource, budget, rngSeed, balance);
        if (!balance.Enabled) return Random(pool, budget, rngSeed, groups.Slots);
        var rng = RandomStreams.Selection(rngSeed, SelectionPurpose.SourceRandom);
        var chosen = new int[groups.Count][];
        for (int g = 0; g < groups.Count; g++)
        {
            int b = groups.Budgets[g];
            int[] rows = groups.Rows[g];
            chosen[g] = b == 0 ? [] : b >= rows.Length ? rows : rng.SampleSorted(rows, b);
        }

        return groups.Result(pool, chosen, null, degenerate: 0);
    }

    /// <summary>
    /// BigLoss (<paramref name="largest"/>) or SmallLoss: the b_q highest (lowest) losses of each
    /// large source when balanced, the min(b, L) highest (lowest) of the whole pool when not. Ties go
    /// to the lower pool index; NaN losses rank after every number in both orders. Features are not
    /// looked at, so DegenerateFeatures is 0.
    /// </summary>
    public static CoresetSelection ByLoss(PoolSketch pool, bool[] isSmallSource, int budget, long rngSeed, SourceBalance balance, bool largest)
    {
        SelectionGroups groups = SelectionGroups.Plan(pool, isSmallSource, budget, rngSeed, balance);
        float[] losses = pool.Losses;
        var chosen = new int[groups.Count][];
        for (int g = 0; g < groups.Count; g++)
            chosen[g] = Top(groups.Rows[g], groups.Budgets[g], (a, b) => CompareLoss(losses[a], losses[b], largest));
        return groups.Result(pool, chosen, null, degenerate: 0);
    }

    /// <summary>
    /// The first <paramref name="count"/> of <paramref name="rows"/> in the order <paramref name="better"/>
    /// (best first), ties to the lower pool index, returned ascending by pool index.
    /// </summary>
    public static int[] Top(int[] rows, int count, Comparison<int> better)
    {
        if (count == 0) return [];
        if (count >= rows.Length) return rows;
        int[] ranked = (int[])rows.Clone();
        Array.Sort(ranked, (a, b) =>
        {
            int c = better(a, b);
            return c != 0 ? c : a.CompareTo(b);
        });
        int[] top = ranked[..count];
        Array.Sort(top);
        return top;
    }

    /// <summary>Negative when loss <paramref name="a"/> ranks first; NaN last either way.</summary>
    private static int CompareLoss(float a, float b, bool largest)
    {
        bool nanA = float.IsNaN(a), nanB = float.IsNaN(b);
        if (nanA || nanB) return nanA.CompareTo(nanB);
        return largest ? b.CompareTo(a) : a.CompareTo(b);
    }
}
