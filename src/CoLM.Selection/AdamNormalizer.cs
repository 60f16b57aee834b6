using System.Numerics;

namespace CoLM.Selection;

/// <summary>
/// The selector's private Adam-like history (COLM.md step 5): f_i = m_hat_i / (sqrt(v_hat_i) + eps)
/// with m_i, v_i one Adam step from the shared (m, v). Kept apart from the optimizer's state so the
/// features do not depend on which optimizer trains the model.
/// </summary>
internal sealed class AdamNormalizer
{
    private readonly float _beta1;
    private readonly float _beta2;
    private readonly float _epsilon;
    private float[] _m;
    private float[] _v;
    private long _step;

    public AdamNormalizer(int dim, SelectionOptions options)
    {
        _beta1 = (float)options.Beta1;
        _beta2 = (float)options.Beta2;
        _epsilon = (float)options.NormalizerEpsilon;
        _m = new float[dim];
        _v = new float[dim];
    }

    public int Dim => _m.Length;

    public float[] M => _m;

    public float[] V => _v;

    public NormalizerState Export() => new((float[])_m.Clone(), (float[])_v.Clone(), _step);

    public void Restore(NormalizerState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.M is null || state.V is null)
            throw new ArgumentException("Normalizer state must carry both M and V.", nameof(state));
        if (state.M.Length != Dim || state.V.Length != Dim)
            throw new ArgumentException(
                $"Normalizer state has M of length {state.M.Length} and V of length {state.V.Length}; this selector's feature dimension is {Dim}.",
                nameof(state));
        if (state.Step < 0)
            throw new ArgumentException($"Normalizer step must not be negative; got {state.Step}.", nameof(state));
        for (int i = 0; i < Dim; i++)
        {
            if (!float.IsFinite(state.M[i]) || !float.IsFinite(state.V[i]) || state.V[i] < 0)
                throw new ArgumentException($"Normalizer state is corrupt at dim {i}: M = {state.M[i]}, V = {state.V[i]}.", nameof(state));
        }

        _m = (float[])state.M.Clone();
        _v = (float[])state.V.Clone();
        _step = state.Step;
    }

    /// <summary>Multipliers 1/(1 - beta^t) for the next update, t = step + 1.</summary>
    public (float M, float V) BiasCorrection()
    {
        double t = _step + 1;
        return ((float)(1 / (1 - Math.Pow(_beta1, t))), (float)(1 / (1 - Math.Pow(_beta2, t))));
    }

    /// <summary>
    /// f = normalize(g) against history slices m, v (in place allowed: f may be g). Non-finite
    /// results become 0; returns whether any did.
    /// </summary>
    public bool Normalize(ReadOnlySpan<float> g, ReadOnlySpan<float> m, ReadOnlySpan<float> v, Span<float> f, (float M, float V) correction)
    {
        int w = Vector<float>.Count;
        var b1 = new Vector<float>(_beta1);
        var b2 = new Vector<float>(_beta2);
        var a1 = new Vector<float>(1 - _beta1);
        var a2 = new Vector<float>(1 - _beta2);
        var c1 = new Vector<float>(correction.M);
        var c2 = new Vector<float>(correction.V);
        var eps = new Vector<float>(_epsilon);
        var inf = new Vector<float>(float.PositiveInfinity);
        var bad = Vector<int>.Zero;
        int i = 0;
        for (; i <= g.Length - w; i += w)
        {
            var gi = new Vector<float>(g[i..]);
            var mi = b1 * new Vector<float>(m[i..]) + a1 * gi;
            var vi = b2 * new Vector<float>(v[i..]) + a2 * gi * gi;
            var fi = mi * c1 / (Vector.SquareRoot(vi * c2) + eps);
            // |f| < inf is false for NaN and for +-inf alike.
            var finite = Vector.LessThan(Vector.Abs(fi), inf);
            bad |= ~finite;
            Vector.ConditionalSelect(finite, fi, Vector<float>.Zero).CopyTo(f[i..]);
        }

        bool anyBad = bad != Vector<int>.Zero;
        for (; i < g.Length; i++)
        {
            float mi = _beta1 * m[i] + (1 - _beta1) * g[i];
            float vi = _beta2 * v[i] + (1 - _beta2) * g[i] * g[i];
            float fi = mi * correction.M / (MathF.Sqrt(vi * correction.V) + _epsilon);
            if (!float.IsFinite(fi))
            {
                fi = 0f;
                anyBad = true;
            }

            f[i] = fi;
        }

        return anyBad;
    }

    /// <summary>
    /// Sets m, v on [offset, offset + len) to the mean of m_i, v_i over the selected examples, given
    /// the sums of their g and g^2: mean(b1 m + (1-b1) g_i) = b1 m + (1-b1) mean(g_i), so the sums suffice.
    /// </summary>
    public void AbsorbChunk(int offset, ReadOnlySpan<float> sumG, ReadOnlySpan<float> sumG2, int count)
    {
        float inv = 1f / count;
        Span<float> m = _m.AsSpan(offset, sumG.Length);
        Span<float> v = _v.AsSpan(offset, sumG.Length);
        for (int i = 0; i < m.Length; i++)
        {
            float mi = _beta1 * m[i] + (1 - _beta1) * sumG[i] * inv;
            float vi = _beta2 * v[i] + (1 - _beta2) * sumG2[i] * inv;
            // A single overflowing example must not poison the history for the rest of the run.
            m[i] = float.IsFinite(mi) ? mi : 0f;
            v[i] = float.IsFinite(vi) ? vi : 0f;
        }
    }

    /// <summary>Counts one completed selection.</summary>
    public void Advance() => _step++;
}
