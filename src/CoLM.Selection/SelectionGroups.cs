namespace CoLM.Selection;

/// <summary>
/// How one pool splits into groups that are each chosen from to their own budget, the common frame
/// of every method that looks at rows. With source balancing (COLM.md steps 2-3): the kept
/// small-source examples, then one group per source id with budget b_q from
/// <see cref="BudgetAllocator"/> (zero for small sources). Without: nothing kept, one group holding
/// the whole pool with budget min(b, L). Either way kept + budgets = min(b, L).
/// </summary>
internal sealed class SelectionGroups
{
    private readonly bool[] _isSmallSource;

    private SelectionGroups(bool balanced, bool[] isSmallSource, int slots, int[] kept, int[][] rows, int[] budgets, int smallLeftOut)
    {
        Balanced = balanced;
        _isSmallSource = isSmallSource;
        Slots = slots;
        Kept = kept;
        Rows = rows;
        Budgets = budgets;
        SmallLeftOut = smallLeftOut;
    }

    public bool Balanced { get; }

    /// <summary>Source-id slots of the result's per-source counts.</summary>
    public int Slots { get; }

    /// <summary>Pool indices kept without selection, ascending.</summary>
    public int[] Kept { get; }

    /// <summary>Pool indices of each group, ascending.</summary>
    public int[][] Rows { get; }

    /// <summary>How many to choose from each group; never more than the group holds.</summary>
    public int[] Budgets { get; }

    /// <summary>Small-source pool examples neither kept nor candidates: they did not fit in b - R.</summary>
    public int SmallLeftOut { get; }

    public int Count => Rows.Length;

    public bool AnythingToSelect => Budgets.Any(b => b > 0);

    public static SelectionGroups Plan(PoolSketch pool, bool[] isSmallSource, int budget, long rngSeed, SourceBalance balance)
    {
        int slots = SourceTable.SlotCount(pool.SourceIds, isSmallSource.Length);
        if (!balance.Enabled)
        {
            int[] all = Enumerable.Range(0, pool.Count).ToArray();
            return new SelectionGroups(false, isSmallSource, slots, [], [all], [Math.Min(budget, pool.Count)], 0);
        }

        BudgetAllocation allocation = BudgetAllocator.Allocate(pool.SourceIds, isSmallSource, budget, rngSeed, balance);
        int[][] rows = SourceTable.RowsBySource(pool.SourceIds, allocation.PerSourceBudget.Length);
        return new SelectionGroups(true, isSmallSource, slots, allocation.KeptIndices, rows, allocation.PerSourceBudget, allocation.SmallLeftOut);
    }

    /// <summary>
    /// Pool rows whose features the method looks at and reports on: the large-source rows when
    /// balanced (small ones are kept or dropped unseen), every row when not.
    /// </summary>
    public bool IsCandidate(PoolSketch pool, int row) => !Balanced || !SourceTable.IsSmall(_isSmallSource, pool.SourceIds[row]);

    /// <summary>Candidate rows flagged degenerate.</summary>
    public int CountDegenerate(PoolSketch pool, bool[] degenerate)
    {
        int count = 0;
        for (int r = 0; r < pool.Count; r++)
            if (degenerate[r] && IsCandidate(pool, r)) count++;
        return count;
    }

    /// <summary>
    /// The result: kept first, then each group's choice in group order (by source id when
    /// balanced), each ascending by pool index. <paramref name="weights"/>, when given, holds per
    /// group the weights aligned with <paramref name="chosen"/>; missing ones are 1.
    /// </summary>
    public CoresetSelection Result(PoolSketch pool, int[][] chosen, float[]?[]? weights, int degenerate)
    {
        int[] order = [.. Kept, .. chosen.SelectMany(c => c)];
        var w = new float[order.Length];
        Array.Fill(w, 1f, 0, Kept.Length);
        int at = Kept.Length;
        for (int g = 0; g < chosen.Length; g++)
        {
            float[]? gw = weights?[g];
            if (gw is null) Array.Fill(w, 1f, at, chosen[g].Length);
            else gw.CopyTo(w, at);
            at += chosen[g].Length;
        }

        return SelectionResult.Build(pool, order, Slots, Kept.Length, degenerate, w) with { SmallLeftOut = SmallLeftOut };
    }
}
