namespace CoLM.Selection;

/// <summary>COLM.md steps 2-3: keep small sources, split the rest of the budget over large ones.</summary>
public static class BudgetAllocator
{
    /// <summary>
    /// Keeps every small-source pool example (a seeded uniform <paramref name="budget"/> of them when
    /// they alone exceed it, and then nothing else), and splits B' = budget - kept over the large
    /// sources in proportion to their pool counts. Budgets plus kept always sum to min(budget, L).
    /// </summary>
    public static BudgetAllocation Allocate(int[] poolSourceIds, bool[] isSmallSource, int budget, long rngSeed)
    {
        ArgumentNullException.ThrowIfNull(poolSourceIds);
        ArgumentNullException.ThrowIfNull(isSmallSource);
        ArgumentOutOfRangeException.ThrowIfNegative(budget);

        int slots = SourceTable.SlotCount(poolSourceIds, isSmallSource.Length);
        var kept = new List<int>();
        var poolCounts = new int[slots];
        for (int i = 0; i < poolSourceIds.Length; i++)
        {
            int s = poolSourceIds[i];
            if (SourceTable.IsSmall(isSmallSource, s)) kept.Add(i);
            else poolCounts[s]++;
        }

        var budgets = new int[slots];
        if (kept.Count >= budget)
        {
            var rng = new SplitMix64(rngSeed, SeedPurpose.KeptSample);
            int[] keptIndices = kept.Count == budget ? kept.ToArray() : rng.SampleSorted(kept.ToArray(), budget);
            return new BudgetAllocation(keptIndices, budgets);
        }

        int large = poolSourceIds.Length - kept.Count;
        int rest = Math.Min(budget - kept.Count, large);
        Split(poolCounts, large, rest, budgets);
        return new BudgetAllocation(kept.ToArray(), budgets);
    }

    /// <summary>b_q = floor(n_q / N * B'), then the remainder one at a time to the smallest allocation.</summary>
    private static void Split(int[] poolCounts, int large, int rest, int[] budgets)
    {
        if (rest == 0) return;
        int given = 0;
        for (int q = 0; q < poolCounts.Length; q++)
        {
            // rest <= large, so b_q <= n_q: the floor never overfills a source.
            budgets[q] = (int)((long)poolCounts[q] * rest / large);
            given += budgets[q];
        }

        // Fewer than (number of large sources) units remain, and the pool holds at least `rest`
        // large examples, so some source with room always exists.
        for (; given < rest; given++)
        {
            int best = -1;
            for (int q = 0; q < poolCounts.Length; q++)
            {
                if (budgets[q] >= poolCounts[q]) continue;
                if (best < 0 || budgets[q] < budgets[best]) best = q;
            }

            budgets[best]++;
        }
    }
}
