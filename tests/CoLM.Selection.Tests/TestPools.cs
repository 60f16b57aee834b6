namespace CoLM.Selection.Tests;

/// <summary>Synthetic pools and feature matrices with a fixed seed, so every test is reproducible.</summary>
internal static class TestPools
{
    public static float[] Gaussian(int count, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        var values = new float[count];
        for (int i = 0; i < count; i++)
        {
            double u1 = 1.0 - rng.NextDouble();
            double u2 = rng.NextDouble();
            values[i] = scale * (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }

        return values;
    }

    /// <summary>
    /// A pool whose source ids cycle through the given per-source counts; small-source rows get zero
    /// coefficients, as trainers never sketch them.
    /// </summary>
    public static PoolSketch Pool(int[] countsPerSource, bool[] isSmall, int probes, int featureDim, int seed, long probeSeed = 77)
    {
        var sources = new List<int>();
        for (int q = 0; q < countsPerSource.Length; q++)
            for (int i = 0; i < countsPerSource[q]; i++) sources.Add(q);
        var rng = new Random(seed);
        int[] sourceIds = sources.OrderBy(_ => rng.Next()).ToArray();
        int l = sourceIds.Length;
        int[] exampleIds = Enumerable.Range(0, l).Select(i => 1000 + 7 * i).ToArray();
        float[] coefficients = Gaussian(l * probes, seed + 1);
        for (int i = 0; i < l; i++)
            if (isSmall[sourceIds[i]]) Array.Clear(coefficients, i * probes, probes);
        float[] losses = Gaussian(l, seed + 2).Select(Math.Abs).ToArray();
        return new PoolSketch(exampleIds, sourceIds, losses, coefficients, probeSeed, probes, featureDim);
    }

    public static SelectionOptions Colm(int keptDims = 0) => new(SelectionMethod.Colm, 0.05, keptDims);

    public static SelectionOptions Options(
        SelectionMethod method, bool balanced = true, CoresetWeighting weighting = CoresetWeighting.Uniform) =>
        new(method, 0.05, 0) { SourceBalancing = balanced, Weighting = weighting };

    /// <summary>
    /// The g_i the selector rebuilds from a pool's coefficients, as dense [L x D] rows: the same
    /// kernel and basis, so bit-identical to what it computes itself.
    /// </summary>
    public static float[] DenseFeatures(PoolSketch pool)
    {
        float[] basis = new ProbeBasis().Get(pool.ProbeSeed, pool.Probes, pool.FeatureDim);
        var dense = new float[pool.Count * pool.FeatureDim];
        for (int r = 0; r < pool.Count; r++)
            SketchGradients.Rebuild(pool.Coefficients.AsSpan(r * pool.Probes, pool.Probes), basis, 0, dense.AsSpan(r * pool.FeatureDim, pool.FeatureDim));
        return dense;
    }

    /// <summary>Pool index of each returned example id.</summary>
    public static int[] PoolIndices(PoolSketch pool, CoresetSelection s) =>
        s.ExampleIds.Select(id => Array.IndexOf(pool.ExampleIds, id)).ToArray();
}
