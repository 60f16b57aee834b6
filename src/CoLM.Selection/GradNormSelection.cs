namespace CoLM.Selection;

/// <summary>
/// The grad-norm baseline: within each large source when balanced (small sources kept), over the
/// whole pool when not, the examples whose raw gradient feature g_i (rebuilt from the sketch, or
/// the dense features; no normalisation) has the largest L2 norm, ties to the lower pool index.
/// Non-finite values count the row as degenerate and read as 0, so an all-NaN row has norm 0 and
/// stays a candidate.
/// </summary>
internal sealed class GradNormSelection(bool[] isSmallSource, int featureDim, SourceBalance balance, ProbeBasis basis)
{
    public CoresetSelection Select(PoolSketch pool, int budget, long rngSeed)
    {
        SelectionGroups groups = SelectionGroups.Plan(pool, isSmallSource, budget, rngSeed, balance);
        var chosen = new int[groups.Count][];
        if (!groups.AnythingToSelect)
        {
            for (int g = 0; g < groups.Count; g++) chosen[g] = [];
            return groups.Result(pool, chosen, null, degenerate: 0);
        }

        var degenerate = new bool[pool.Count];
        GradientFeatures features = GradientFeatures.For(pool, featureDim, basis, degenerate);
        // Norms only where there is a choice to make; one pass over all such rows.
        int[] contested = Enumerable.Range(0, groups.Count)
            .Where(g => groups.Budgets[g] > 0 && groups.Budgets[g] < groups.Rows[g].Length)
            .SelectMany(g => groups.Rows[g]).ToArray();
        double[] squared = SourceFeatures.SquaredNorms(contested, features, degenerate);
        var norm = new double[pool.Count];
        for (int i = 0; i < contested.Length; i++) norm[contested[i]] = squared[i];

        for (int g = 0; g < groups.Count; g++)
            chosen[g] = BaselineSelection.Top(groups.Rows[g], groups.Budgets[g], (a, b) => norm[b].CompareTo(norm[a]));
        return groups.Result(pool, chosen, null, groups.CountDegenerate(pool, degenerate));
    }
}
