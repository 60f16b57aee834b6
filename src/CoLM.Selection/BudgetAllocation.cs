namespace CoLM.Selection;

/// <summary>The outcome of COLM.md steps 2-3 for one pool.</summary>
/// <param name="KeptIndices">Pool indices of kept small-source examples, ascending.</param>
/// <param name="PerSourceBudget">b_q per source id; zero for small sources and sources absent from the pool.</param>
public sealed record BudgetAllocation(int[] KeptIndices, int[] PerSourceBudget)
{
    /// <summary>Small-source pool examples not kept because they did not fit in b - R (0 on most steps).</summary>
    public int SmallLeftOut { get; init; }
}
