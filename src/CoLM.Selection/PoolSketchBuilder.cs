namespace CoLM.Selection;

/// <summary>
/// Merges the sketches that trainers computed for their shares of a pool into one
/// <see cref="PoolSketch"/> in pool order. Rows never sketched (small sources) stay zero.
/// </summary>
public sealed class PoolSketchBuilder
{
    private readonly int[] _pool;
    private readonly Dictionary<int, int> _row;
    private readonly float[] _losses;
    private readonly float[] _coefficients;
    private readonly int _probes;

    public PoolSketchBuilder(int[] pool, int probes)
    {
        _pool = pool;
        _probes = probes;
        _row = new Dictionary<int, int>(pool.Length);
        for (int i = 0; i < pool.Length; i++) _row[pool[i]] = i;
        _losses = new float[pool.Length];
        _coefficients = new float[pool.Length * probes];
    }

    /// <summary>Adds one trainer's share: ids with their losses and row-major [ids x probes] coefficients.</summary>
    public void Add(IReadOnlyList<int> ids, IReadOnlyList<float> losses, IReadOnlyList<float> coefficients)
    {
        if (losses.Count != ids.Count || coefficients.Count != ids.Count * _probes)
            throw new ArgumentException($"a sketch of {ids.Count} examples needs {ids.Count} losses and {ids.Count * _probes} coefficients, got {losses.Count} and {coefficients.Count}");
        for (int j = 0; j < ids.Count; j++)
        {
            if (!_row.TryGetValue(ids[j], out int i))
                throw new ArgumentException($"example {ids[j]} was sketched but is not in this pool");
            _losses[i] = losses[j];
            for (int c = 0; c < _probes; c++) _coefficients[i * _probes + c] = coefficients[j * _probes + c];
        }
    }

    public PoolSketch Build(int[] sourceIds, long probeSeed, int featureDim) =>
        new(_pool, sourceIds, _losses, _coefficients, probeSeed, _probes, featureDim);
}
