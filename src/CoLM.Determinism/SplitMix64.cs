namespace CoLM.Determinism;

/// <summary>
/// The one generator behind every seeded choice (SplitMix64, Steele et al. 2014): our own so that
/// a stream is the same on every process, machine and .NET version (System.Random's algorithm is
/// an implementation detail). Streams are made by <see cref="RandomStreams"/>, never directly.
/// </summary>
public sealed class SplitMix64
{
    private ulong _state;

    internal SplitMix64(ulong state) => _state = state;

    public ulong NextUInt64()
    {
        unchecked
        {
            _state += RandomStreams.Gamma;
        }
        return RandomStreams.Finalize(_state);
    }

    /// <summary>
    /// Uniform in [0, maxExclusive), without modulo bias: draws below 2^64 mod bound, which would
    /// make the low residues more likely, are rejected (probability below bound / 2^64).
    /// </summary>
    public int NextInt(int maxExclusive)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxExclusive);
        var bound = (ulong)maxExclusive;
        var threshold = unchecked(0UL - bound) % bound;
        while (true)
        {
            var r = NextUInt64();
            if (r >= threshold) return (int)(r % bound);
        }
    }

    /// <summary>Uniform in [min, maxInclusive].</summary>
    public int NextInt(int min, int maxInclusive) => min + NextInt(maxInclusive - min + 1);

    /// <summary>Uniform in [0, 1), from the top 53 bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Fisher-Yates, from the last item down.</summary>
    public void Shuffle<T>(IList<T> items)
    {
        for (var i = items.Count - 1; i > 0; i--)
        {
            var j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>A uniform random subset of <paramref name="count"/> items of <paramref name="items"/>, ascending.</summary>
    public int[] SampleSorted(ReadOnlySpan<int> items, int count)
    {
        int[] pool = items.ToArray();
        count = Math.Min(count, pool.Length);
        // Partial Fisher-Yates: the first `count` slots end up a uniform sample without replacement.
        for (int i = 0; i < count; i++)
        {
            int j = i + NextInt(pool.Length - i);
            (pool[i], pool[j]) = (pool[j], pool[i]);
        }
        int[] chosen = pool[..count];
        Array.Sort(chosen);
        return chosen;
    }
}
