namespace CoLM.Selection;

/// <summary>
/// Where one pool's raw gradient features g_i come from: rebuilt from the sketch coefficients and
/// the probe basis (zeroth-order `zo`/`paper` features), or read from the pool's dense
/// <see cref="PoolSketch.Features"/> (`exact`). Either way non-finite values read as 0 and the row
/// counts as degenerate, as does an all-zero row (an example nobody computed a feature for).
/// </summary>
internal sealed class GradientFeatures
{
    private GradientFeatures(int dim, float[]? dense, float[]? coefficients, int probes, float[]? basis)
    {
        Dim = dim;
        Dense = dense;
        Coefficients = coefficients;
        Probes = probes;
        Basis = basis;
    }

    public int Dim { get; }

    /// <summary>[L x Dim] as given (not sanitised: readers zero non-finite values as they copy).</summary>
    public float[]? Dense { get; }

    /// <summary>Sanitised [L x Probes] coefficients, when not dense.</summary>
    public float[]? Coefficients { get; }

    public int Probes { get; }

    /// <summary>The interleaved probe basis of <see cref="SketchGradients"/>, when not dense.</summary>
    public float[]? Basis { get; }

    /// <summary>
    /// The features of <paramref name="pool"/>, marking degenerate rows in <paramref name="degenerate"/>.
    /// Throws when the pool carries neither dense features nor probe coefficients.
    /// </summary>
    public static GradientFeatures For(PoolSketch pool, int dim, ProbeBasis basis, bool[] degenerate)
    {
        if (pool.Features is { } dense)
        {
            Parallel.For(0, pool.Count, r => degenerate[r] = IsDegenerate(dense.AsSpan(r * dim, dim)));
            return new GradientFeatures(dim, dense, null, 0, null);
        }

        if (pool.Probes < 1)
            throw new ArgumentException("Pool has examples to select by gradient but carries neither dense features nor probe coefficients (Probes = 0).");
        float[] coefs = SketchGradients.Sanitize(pool.Coefficients, pool.Count, pool.Probes, degenerate);
        return new GradientFeatures(dim, null, coefs, pool.Probes, basis.Get(pool.ProbeSeed, pool.Probes, dim));
    }

    /// <summary>A dense row is degenerate when some value is NaN/infinite or every value is zero.</summary>
    private static bool IsDegenerate(ReadOnlySpan<float> row)
    {
        bool nonZero = false;
        foreach (float x in row)
        {
            if (!float.IsFinite(x)) return true;
            if (x != 0f) nonZero = true;
        }

        return !nonZero;
    }

    /// <summary>Copies dense values with non-finite ones set to 0; returns whether there were any.</summary>
    public static bool CopyClean(ReadOnlySpan<float> source, Span<float> destination)
    {
        bool bad = false;
        for (int i = 0; i < source.Length; i++)
        {
            float x = source[i];
            if (float.IsFinite(x)) destination[i] = x;
            else
            {
                destination[i] = 0f;
                bad = true;
            }
        }

        return bad;
    }
}
