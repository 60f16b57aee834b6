namespace CoLM.Selection;

/// <summary>
/// COLM.md steps 2-7 for one pool: allocate, rebuild and normalize features, sparsify per source,
/// facility location per source, then update the normalizer history from what was chosen.
/// </summary>
internal sealed class ColmSelection(bool[] isSmallSource, int featureDim, int keptDims, AdamNormalizer normalizer, ProbeBasis basis)
{
    private readonly SelectionWorkspace _workspace = new();

    public CoresetSelection Select(PoolSketch pool, int budget, long rngSeed)
    {
        BudgetAllocation allocation = BudgetAllocator.Allocate(pool.SourceIds, isSmallSource, budget, rngSeed);
        int[] budgets = allocation.PerSourceBudget;
        int slots = budgets.Length;
        int[][] rows = SourceTable.RowsBySource(pool.SourceIds, slots);

        var chosen = new int[slots][];
        var contested = new List<int>();
        for (int q = 0; q < slots; q++)
        {
            if (budgets[q] == 0) chosen[q] = [];
            else if (budgets[q] >= rows[q].Length) chosen[q] = rows[q]; // a source within its budget takes all
            else contested.Add(q);
        }

        var degenerate = new bool[pool.Count];
        int degenerateCount = 0;
        if (budgets.Sum() > 0)
        {
            if (pool.Probes < 1)
                throw new ArgumentException("Pool has large-source examples to select but carries no probe coefficients (Probes = 0).");
            float[] coefs = SketchGradients.Sanitize(pool.Coefficients, pool.Count, pool.Probes, degenerate);
            float[] z = basis.Get(pool.ProbeSeed, pool.Probes, featureDim);
            if (contested.Count > 0) SelectContested(pool, rows, budgets, contested, coefs, z, degenerate, chosen);

            int[] selectedLarge = chosen.SelectMany(c => c).ToArray();
            SourceFeatures.Absorb(selectedLarge, coefs, pool.Probes, z, featureDim, normalizer, degenerate);
            for (int r = 0; r < pool.Count; r++)
                if (degenerate[r] && !SourceTable.IsSmall(isSmallSource, pool.SourceIds[r])) degenerateCount++;
        }

        // Kept first, then each source's selection by source id.
        int[] order = [.. allocation.KeptIndices, .. chosen.SelectMany(c => c)];
        return SelectionResult.Build(pool, order, slots, allocation.KeptIndices.Length, degenerateCount);
    }

    private void SelectContested(
        PoolSketch pool, int[][] rows, int[] budgets, List<int> contested, float[] coefs, float[] z, bool[] degenerate, int[][] chosen)
    {
        int[][] contestedRows = contested.Select(q => rows[q]).ToArray();
        // Source means use the history as it was before this step, as every f_i does.
        float[] sums = _workspace.SourceSums((long)contested.Count * featureDim);
        SourceFeatures.Sums(contestedRows, coefs, pool.Probes, z, featureDim, normalizer, degenerate, sums);

        int maxRows = contestedRows.Max(r => r.Length);
        FeatureRows features = _workspace.Features(maxRows, keptDims);
        float[] similarity = _workspace.Similarity(maxRows);
        float[] scratch = _workspace.Magnitudes(featureDim);
        var mask = new int[keptDims];
        for (int s = 0; s < contested.Count; s++)
        {
            int q = contested[s];
            int[] sourceRows = contestedRows[s];
            TopDims.Select(sums.AsSpan(s * featureDim, featureDim), keptDims, scratch, mask);
            SourceFeatures.Masked(sourceRows, mask, coefs, pool.Probes, z, normalizer, degenerate, features);
            int[] picks = FacilityLocation.LazyGreedy(features, sourceRows.Length, budgets[q], similarity);
            int[] poolIndices = picks.Select(p => sourceRows[p]).ToArray();
            Array.Sort(poolIndices);
            chosen[q] = poolIndices;
        }
    }
}
