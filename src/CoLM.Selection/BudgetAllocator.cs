using CoLM.Determinism;
namespace CoLM.Selection;

/// <summary>COLM.md steps 2-3: keep small sources, split the rest of the budget over large ones.</summary>
public static class BudgetAllocator
{
    /// <summary>
    /// Keeps every small-source pool example while they fit in b - R (R from
    /// <see cref="SourceBalance.Reserve"/>), else a seeded sample of b - R of them shared over the
    /// small sources; then splits B' = budget - kept over the large sources in proportion to their
    /// pool counts. Budgets plus kept always sum to min(budget, L).
    /// </summary>
    public static BudgetAllocation Allocate(int[] poolSourceIds, bool[] isSmallSource, int budget, long rngSeed, SourceBalance balance)
    {
        ArgumentNullException.ThrowIfNull(poolSourceIds);
        ArgumentNullException.ThrowIfNull(isSmallSource);
        ArgumentNullException.ThrowIfNull(balance);
        ArgumentOutOfRangeException.ThrowIfNegative(budget);

        int slots = SourceTable.SlotCount(poolSourceIds, isSmallSource.Length);
        var small = new List<int>();
        var poolCounts = new int[slots];
        for (int i = 0; i < poolSourceIds.Length; i++)
        {
            int s = poolSourceIds[i];
            if (SourceTable.IsSmall(isSmallSource, s)) small.Add(i);
            else poolCounts[s]++;
        }

        int large = poolSourceIds.Length - small.Count;
        int reserve = balance.Reserve(budget, poolCounts.Count(n => n > 0), large);
        int room = budget - reserve;
        int[] kept = small.Count <= room
            ? small.ToArray()
            : SampleSmall(small, poolSourceIds, room, RandomStreams.Selection(rngSeed, SelectionPurpose.KeptSample));

        var budgets = new int[slots];
        Split(poolCounts, large, Math.Min(budget - kept.Length, large), budgets);
        return new BudgetAllocation(kept, budgets) { SmallLeftOut = small.Count - kept.Length };
    }

    /// <summary>
    /// <paramref name="room"/> of the small-source rows, ascending: each small source present gets
    /// one, the rest is shared in proportion to what each has beyond that one (largest remainder,
    /// ties to the lower source id), and each source's rows are a uniform sample. When more small
    /// sources are present than there is room, a uniform <paramref name="room"/> of them get one each.
    /// </summary>
    private static int[] SampleSmall(List<int> rows, int[] poolSourceIds, int room, SplitMix64 rng)
    {
        if (room == 0) return [];
        // Rows of each small source present, by ascending source id.
        var bySource = rows.GroupBy(r => poolSourceIds[r]).OrderBy(g => g.Key).Select(g => g.ToArray()).ToArray();
        var take = new int[bySource.Length];
        if (bySource.Length >= room)
        {
            foreach (int g in rng.SampleSorted(Enumerable.Range(0, bySource.Length).ToArray(), room)) take[g] = 1;
        }
        else
        {
            int extra = room - bySource.Length, beyondOne = rows.Count - bySource.Length;
            var remainders = new long[bySource.Length];
            int given = 0;
            for (int g = 0; g < bySource.Length; g++)
            {
                // room < rows.Count, so extra < beyondOne: no source is given more rows than it has.
                long share = (long)(bySource[g].Length - 1) * extra;
                take[g] = 1 + (int)(share / beyondOne);
                remainders[g] = share % beyondOne;
                given += take[g];
            }

            foreach (int g in Enumerable.Range(0, bySource.Length).OrderByDescending(g => remainders[g]).ThenBy(g => g).Take(room - given))
                take[g]++;
        }

        var kept = new List<int>(room);
        for (int g = 0; g < bySource.Length; g++)
            if (take[g] > 0) kept.AddRange(rng.SampleSorted(bySource[g], take[g]));
        kept.Sort();
        return kept.ToArray();
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
