namespace CoLM.Selection;

/// <summary>
/// Facility location on feature rows (COLM.md step 7): L1 distance, similarity S = max(D) - D over
/// the candidate set, maximise sum_i max_{s in S} S(i, s). Results list the chosen rows in the
/// order greedy picked them.
/// </summary>
public static class FacilityLocation
{
    /// <summary>Lazy greedy (max-heap of stale upper bounds); same result as <see cref="Greedy"/>, far fewer gain evaluations.</summary>
    public static int[] LazyGreedy(ReadOnlySpan<float> features, int n, int dims, int k)
    {
        Check(features, n, dims, k);
        return LazyGreedy(FeatureRows.From(features, n, dims), n, k, null);
    }

    /// <summary>Plain greedy: every candidate's gain at every step. For tests and as the reference.</summary>
    public static int[] Greedy(ReadOnlySpan<float> features, int n, int dims, int k)
    {
        Check(features, n, dims, k);
        if (k == 0) return [];
        float[] sim = Similarities(FeatureRows.From(features, n, dims), n, null);
        return FacilityGreedy.Plain(sim, n, k);
    }

    /// <summary>F(S) in double, with S built exactly as the greedy builds it; F of the empty set is 0.</summary>
    public static double Objective(ReadOnlySpan<float> features, int n, int dims, ReadOnlySpan<int> selected)
    {
        Check(features, n, dims, 0);
        foreach (int s in selected)
            if ((uint)s >= (uint)n) throw new ArgumentOutOfRangeException(nameof(selected), $"Selected row {s} is not in [0, {n}).");
        if (selected.IsEmpty) return 0;
        float[] sim = Similarities(FeatureRows.From(features, n, dims), n, null);
        double total = 0;
        for (int i = 0; i < n; i++)
        {
            float best = float.NegativeInfinity;
            foreach (int s in selected) best = Math.Max(best, sim[(long)i * n + s]);
            total += best;
        }

        return total;
    }

    /// <summary>The selector's entry: the first <paramref name="n"/> rows of <paramref name="features"/>, distance buffer reused between sources.</summary>
    internal static int[] LazyGreedy(FeatureRows features, int n, int k, float[]? scratch) =>
        LazyGreedy(features, n, k, scratch, out _);

    /// <summary>As above, also handing back the [n x n] similarity matrix it used (for <see cref="NearestCounts"/>).</summary>
    internal static int[] LazyGreedy(FeatureRows features, int n, int k, float[]? scratch, out float[] similarities)
    {
        similarities = [];
        if (k == 0) return [];
        similarities = Similarities(features, n, scratch);
        return FacilityGreedy.Lazy(similarities, n, k);
    }

    /// <summary>
    /// Medoid weights: for each of <paramref name="selected"/> (row indices, in any order), how many of
    /// the n rows have it as their most similar selected row, i.e. the nearest by L1, itself included.
    /// A selected row always counts itself (even when a duplicate is as near); any other row with
    /// several equally near selected rows goes to the lowest row index among them. The counts are
    /// all at least 1 and sum to n.
    /// </summary>
    internal static int[] NearestCounts(float[] similarities, int n, int[] selected)
    {
        var counts = new int[selected.Length];
        var slotOf = new int[n];
        Array.Fill(slotOf, -1);
        for (int s = 0; s < selected.Length; s++) slotOf[selected[s]] = s;
        // Candidates by ascending row index, so a strict comparison leaves ties with the lowest row.
        int[] byRow = Enumerable.Range(0, selected.Length).OrderBy(s => selected[s]).ToArray();
        for (int i = 0; i < n; i++)
        {
            if (slotOf[i] >= 0)
            {
                counts[slotOf[i]]++;
                continue;
            }

            int best = byRow[0];
            float bestSim = similarities[(long)i * n + selected[best]];
            for (int j = 1; j < byRow.Length; j++)
            {
                float sim = similarities[(long)i * n + selected[byRow[j]]];
                if (sim > bestSim) (best, bestSim) = (byRow[j], sim);
            }

            counts[best]++;
        }

        return counts;
    }

    private static float[] Similarities(FeatureRows features, int n, float[]? scratch)
    {
        long size = (long)n * n;
        float[] sim = scratch is not null && scratch.Length >= size ? scratch : new float[size];
        L1Distances.Compute(features.Data, features.Start, features.Stride, n, features.Dims, sim);
        FacilityGreedy.DistancesToSimilarities(sim.AsSpan(0, (int)size));
        return sim;
    }

    private static void Check(ReadOnlySpan<float> features, int n, int dims, int k)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(dims);
        if (features.Length < (long)n * dims)
            throw new ArgumentException($"Features hold {features.Length} values, fewer than n x dims = {n} x {dims}.", nameof(features));
        if (k < 0 || k > n)
            throw new ArgumentOutOfRangeException(nameof(k), $"Cannot select {k} of {n} rows.");
    }
}
