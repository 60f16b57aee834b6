using CoLM.Determinism;
namespace CoLM.Data;

/// <summary>
/// Draws pools of train ids without replacement within an epoch: each epoch is a fresh seeded
/// permutation consumed in order, and a pool that reaches the end continues into the next epoch.
/// The permutation of epoch e depends only on (seed, e), so a restored sampler continues exactly.
/// </summary>
public sealed class PoolSampler
{
    private readonly long _seed;
    private long _epoch;
    private int _position;
    private int[] _permutation;

    public PoolSampler(int datasetSize, long seed)
    {
        if (datasetSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(datasetSize), datasetSize, "must be at least 1");
        }

        DatasetSize = datasetSize;
        _seed = seed;
        _permutation = Permutation(0);
    }

    public int DatasetSize { get; }

    public SamplerState State => new(_epoch, _position);

    public int[] Next(int poolSize)
    {
        if (poolSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(poolSize), poolSize, "must be at least 1");
        }

        var pool = new int[poolSize];
        for (var i = 0; i < poolSize; i++)
        {
            pool[i] = _permutation[_position++];
            if (_position == DatasetSize)
            {
                _epoch++;
                _position = 0;
                _permutation = Permutation(_epoch);
            }
        }

        return pool;
    }

    public void Restore(SamplerState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Epoch < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(state), state, "epoch must not be negative");
        }

        if (state.Position < 0 || state.Position >= DatasetSize)
        {
            throw new ArgumentOutOfRangeException(nameof(state), state, $"position must be in [0, {DatasetSize})");
        }

        if (state.Epoch != _epoch)
        {
            _permutation = Permutation(state.Epoch);
        }

        _epoch = state.Epoch;
        _position = state.Position;
    }

    private int[] Permutation(long epoch)
    {
        var ids = new int[DatasetSize];
        for (var i = 0; i < ids.Length; i++)
        {
            ids[i] = i;
        }

        RandomStreams.Data(_seed, DataStream.PoolSampler, unchecked((ulong)epoch)).Shuffle(ids);
        return ids;
    }
}
