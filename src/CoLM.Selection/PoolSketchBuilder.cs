using System.Collections.Immutable;
using System.Runtime.InteropServices;

namespace CoLM.Selection;

/// <summary>
/// Merges the sketches that trainers computed for their shares of a pool into one
/// <see cref="PoolSketch"/> in pool order. Rows never sketched (small sources under source
/// balancing) stay zero. A trainer's share carries losses, K zeroth-order coefficients per example
/// (`zo`/`paper` features; K may be 0) and, when the builder was made with a feature dimension,
/// dense gradient features (`exact`), which then become <see cref="PoolSketch.Features"/>.
/// </summary>
public sealed class PoolSketchBuilder
{
    private readonly int[] _pool;
    private readonly Dictionary<int, int> _row;
    private readonly float[] _losses;
    private readonly float[] _coefficients;
    private readonly float[]? _features;
    private readonly int _probes;
    private readonly int _featureDim;

    /// <param name="pool">Dataset ids of the pool, in pool order.</param>
    /// <param name="probes">K, coefficients per sketched example (0 when features are dense or only losses are sent).</param>
    /// <param name="featureDim">D of dense features each share carries; 0 (default) when shares carry none.</param>
    public PoolSketchBuilder(int[] pool, int probes, int featureDim = 0)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentOutOfRangeException.ThrowIfNegative(probes);
        ArgumentOutOfRangeException.ThrowIfNegative(featureDim);
        if ((long)pool.Length * featureDim > Array.MaxLength)
            throw new ArgumentException($"{pool.Length} x {featureDim} dense features do not fit in one array.");
        _pool = pool;
        _probes = probes;
        _featureDim = featureDim;
        _row = new Dictionary<int, int>(pool.Length);
        for (int i = 0; i < pool.Length; i++) _row[pool[i]] = i;
        _losses = new float[pool.Length];
        _coefficients = new float[pool.Length * probes];
        _features = featureDim > 0 ? new float[pool.Length * featureDim] : null;
    }

    /// <summary>
    /// Adds one trainer's share: ids with their losses, row-major [ids x probes] coefficients and,
    /// when the builder has a feature dimension, row-major [ids x featureDim] features (otherwise
    /// <paramref name="features"/> must be null or empty).
    /// </summary>
    public void Add(IReadOnlyList<int> ids, IReadOnlyList<float> losses, IReadOnlyList<float> coefficients, IReadOnlyList<float>? features = null)
    {
        ArgumentNullException.ThrowIfNull(ids);
        ArgumentNullException.ThrowIfNull(losses);
        ArgumentNullException.ThrowIfNull(coefficients);
        if (losses.Count != ids.Count || coefficients.Count != ids.Count * _probes)
            throw new ArgumentException($"a sketch of {ids.Count} examples needs {ids.Count} losses and {ids.Count * _probes} coefficients, got {losses.Count} and {coefficients.Count}");
        int featureCount = features?.Count ?? 0;
        if (featureCount != (long)ids.Count * _featureDim)
            throw new ArgumentException($"a sketch of {ids.Count} examples needs {(long)ids.Count * _featureDim} feature values ({_featureDim} each), got {featureCount}");
        for (int j = 0; j < ids.Count; j++)
        {
            if (!_row.TryGetValue(ids[j], out int i))
                throw new ArgumentException($"example {ids[j]} was sketched but is not in this pool");
            _losses[i] = losses[j];
            for (int c = 0; c < _probes; c++) _coefficients[i * _probes + c] = coefficients[j * _probes + c];
            if (_features is not null) CopyRow(features!, j * _featureDim, _features.AsSpan(i * _featureDim, _featureDim));
        }
    }

    /// <summary>The merged pool. With dense features, <paramref name="featureDim"/> must equal the builder's.</summary>
    public PoolSketch Build(int[] sourceIds, long probeSeed, int featureDim)
    {
        if (_features is not null && featureDim != _featureDim)
            throw new ArgumentException($"the builder holds features of dimension {_featureDim}, not {featureDim}", nameof(featureDim));
        return new PoolSketch(_pool, sourceIds, _losses, _coefficients, probeSeed, _probes, featureDim) { Features = _features };
    }

    /// <summary>Copies one row; a contiguous source (array, list, immutable array) is copied as a block.</summary>
    private static void CopyRow(IReadOnlyList<float> source, int start, Span<float> destination)
    {
        ReadOnlySpan<float> block = source switch
        {
            float[] a => a,
            ImmutableArray<float> ia => ia.AsSpan(),
            List<float> l => CollectionsMarshal.AsSpan(l),
            _ => default,
        };
        if (block.Length == source.Count)
        {
            block.Slice(start, destination.Length).CopyTo(destination);
            return;
        }

        for (int d = 0; d < destination.Length; d++) destination[d] = source[start + d];
    }
}
