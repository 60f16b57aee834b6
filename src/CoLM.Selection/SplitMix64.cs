namespace CoLM.Selection;

/// <summary>
/// A small seeded generator so that every random choice depends only on the seed passed to a call,
/// never on a shared or global RNG (the reference resets a global RNG, which couples unrelated draws).
/// </summary>
internal sealed class SplitMix64
{
    private ulong _state;

    /// <param name="seed">The caller's seed.</param>
    /// <param name="purpose">Distinguishes independent uses of one seed (e.g. kept sampling vs. random selection).</param>
    public SplitMix64(long seed, ulong purpose) => _state = ProbeDirections.Mix((ulong)seed ^ ProbeDirections.Mix(purpose));

    public ulong NextUInt64()
    {
        _state += 0x9E3779B97F4A7C15UL;
        ulong z = _state;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform integer in [0, bound), unbiased (rejection of the short last stripe).</summary>
    public int NextInt(int bound)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bound);
        ulong b = (ulong)bound;
        ulong limit = ulong.MaxValue - ulong.MaxValue % b;
        ulong r;
        do r = NextUInt64(); while (r >= limit);
        return (int)(r % b);
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
