namespace CoLM.Selection;

/// <summary>
/// The K probe directions of one pool in the interleaved layout of <see cref="SketchGradients"/>.
/// Each z_k is generated once per seed rather than once per example, and kept while the seed
/// repeats (the `paper` mode's fixed seed then costs nothing after the first step); the buffer is
/// reused so steady state allocates nothing.
/// </summary>
internal sealed class ProbeBasis
{
    private float[] _z = [];
    private long _seed;
    private int _probes = -1;
    private int _dim = -1;

    public float[] Get(long seed, int probes, int dim)
    {
        if (seed == _seed && probes == _probes && dim == _dim) return _z;
        long size = SketchGradients.Size(probes, dim);
        if (size > Array.MaxLength)
            throw new ArgumentException($"{probes} probes of dimension {dim} do not fit in one array.");
        if (_z.Length != size) _z = new float[size];
        // Mark invalid first so an exception mid-fill never leaves a half-written basis looking valid.
        _probes = -1;
        float[] z = _z;
        Parallel.For(0, probes, () => new float[dim], (k, _, row) =>
        {
            // Fill wants one contiguous z_k; scatter it into the interleaved slots afterwards.
            ProbeDirections.Fill(seed, k, row);
            for (int d = 0; d < dim; d++) z[SketchGradients.Index(probes, k, d)] = row[d];
            return row;
        }, _ => { });
        (_seed, _probes, _dim) = (seed, probes, dim);
        return z;
    }

    /// <summary>The masked columns of an interleaved basis, themselves interleaved (h dims).</summary>
    public static float[] Gather(float[] basis, int probes, ReadOnlySpan<int> mask)
    {
        var gathered = new float[SketchGradients.Size(probes, mask.Length)];
        for (int j = 0; j < mask.Length; j++)
            for (int k = 0; k < probes; k++)
                gathered[SketchGradients.Index(probes, k, j)] = basis[SketchGradients.Index(probes, k, mask[j])];
        return gathered;
    }
}
