namespace CoLM.Selection;

/// <summary>
/// The large per-selection buffers, kept between calls so a steady run does not churn the
/// large-object heap every step. Only grows; sized by the largest pool seen.
/// </summary>
internal sealed class SelectionWorkspace
{
    private float[] _sourceSums = [];
    private float[] _magnitudes = [];
    private float[] _similarity = [];
    private FeatureRows? _features;

    /// <summary>A zeroed buffer of at least <paramref name="size"/> floats for per-source feature sums.</summary>
    public float[] SourceSums(long size)
    {
        if (_sourceSums.Length < size) _sourceSums = new float[size];
        else Array.Clear(_sourceSums, 0, (int)size);
        return _sourceSums;
    }

    /// <summary>Scratch for the top-h search over one source's D values.</summary>
    public float[] Magnitudes(int dim) => _magnitudes.Length >= dim ? _magnitudes : _magnitudes = new float[dim];

    /// <summary>Room for an [n x n] similarity matrix.</summary>
    public float[] Similarity(int n) => _similarity.Length >= (long)n * n ? _similarity : _similarity = new float[(long)n * n];

    /// <summary>Aligned rows for the masked features of one source.</summary>
    public FeatureRows Features(int rows, int dims)
    {
        // Rows are overwritten in full (Dims floats) and the padding is never written, so reuse is safe.
        if (_features is null || _features.Rows < rows || _features.Dims != dims) _features = new FeatureRows(rows, dims);
        return _features;
    }
}
