namespace CoLM.Selection.Benchmarks;

/// <summary>Seeded inputs: every run of the suite times the same numbers.</summary>
internal static class SyntheticInputs
{
    /// <summary>
    /// [rows x dims] features drawn around <paramref name="clusters"/> random centres (centre + unit
    /// noise), so facility location has structure to find, as it does with real gradient features,
    /// rather than a cloud of equidistant points.
    /// </summary>
    public static float[] ClusteredRows(int rows, int dims, int clusters, int seed)
    {
        var rng = new Random(seed);
        float[] centres = Gaussian(rng, clusters * dims, 2f);
        var features = Gaussian(rng, rows * dims, 1f);
        for (int i = 0; i < rows; i++)
        {
            int c = rng.Next(clusters);
            for (int d = 0; d < dims; d++) features[i * dims + d] += centres[c * dims + d];
        }

        return features;
    }

    /// <summary>Standard normal values times <paramref name="scale"/> (Box-Muller).</summary>
    public static float[] Gaussian(Random rng, int count, float scale)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++)
        {
            double u1 = 1.0 - rng.NextDouble();
            double u2 = rng.NextDouble();
            values[i] = scale * (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }

        return values;
    }
}
