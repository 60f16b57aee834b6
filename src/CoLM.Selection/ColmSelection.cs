namespace CoLM.Selection;

/// <summary>
/// COLM.md steps 2-7 for one pool: plan the groups (per large source with source balancing, the
/// whole pool without), rebuild and normalise features, sparsify per group, facility location per
/// group, then update the normaliser history from what was chosen.
/// </summary>
internal sealed class ColmSelection(
    bool[] isSmallSource, int featureDim, int keptDims, SourceBalance balance, CoresetWeighting weighting, AdamNormalizer normalizer, ProbeBasis basis)
{
    private readonly SelectionWorkspace _workspace = new();

    public CoresetSelection Select(PoolSketch pool, int budget, long rngSeed)
    {
        SelectionGroups groups = SelectionGroups.Plan(pool, isSmallSource, budget, rngSeed, balance);
        var chosen = new int[groups.Count][];
        var weights = new float[]?[groups.Count];
        var contested = new List<int>();
        for (int g = 0; g < groups.Count; g++)
        {
            if (groups.Budgets[g] == 0) chosen[g] = [];
            else if (groups.Budgets[g] >= groups.Rows[g].Length) chosen[g] = groups.Rows[g]; // a group within its budget takes all
            else contested.Add(g);
        }

        int degenerateCount = 0;
        if (groups.AnythingToSelect)
        {
            var degenerate = new bool[pool.Count];
            GradientFeatures features = GradientFeatures.For(pool, featureDim, basis, degenerate);
            if (contested.Count > 0) SelectContested(groups, contested, features, degenerate, chosen, weights);

            int[] selected = chosen.SelectMany(c => c).ToArray();
            SourceFeatures.Absorb(selected, features, normalizer, degenerate);
            degenerateCount = groups.CountDegenerate(pool, degenerate);
        }

        return groups.Result(pool, chosen, weights, degenerateCount);
    }

    private void SelectContested(
        SelectionGroups groups, List<int> contested, GradientFeatures features, bool[] degenerate, int[][] chosen, float[]?[] weights)
    {
        int[][] contestedRows = contested.Select(g => groups.Rows[g]).ToArray();
        // Group means use the history as it was before this step, as every f_i does.
        float[] sums = _workspace.SourceSums((long)contested.Count * featureDim);
        SourceFeatures.Sums(contestedRows, features, normalizer, degenerate, sums);

        int maxRows = contestedRows.Max(r => r.Length);
        FeatureRows masked = _workspace.Features(maxRows, keptDims);
        float[] scratch = _workspace.Similarity(maxRows);
        float[] magnitudes = _workspace.Magnitudes(featureDim);
        var mask = new int[keptDims];
        for (int s = 0; s < contested.Count; s++)
        {
            int g = contested[s];
            int[] rows = contestedRows[s];
            TopDims.Select(sums.AsSpan(s * featureDim, featureDim), keptDims, magnitudes, mask);
            SourceFeatures.Masked(rows, mask, features, normalizer, degenerate, masked);
            int[] picks = FacilityLocation.LazyGreedy(masked, rows.Length, groups.Budgets[g], scratch, out float[] similarities);
            // Rows are ascending, so ascending picks give ascending pool indices.
            Array.Sort(picks);
            chosen[g] = picks.Select(p => rows[p]).ToArray();
            if (weighting == CoresetWeighting.Medoid)
                weights[g] = FacilityLocation.NearestCounts(similarities, rows.Length, picks).Select(c => (float)c).ToArray();
        }
    }
}
