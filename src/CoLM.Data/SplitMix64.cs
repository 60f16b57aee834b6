namespace CoLM.Data;

/// <summary>
/// Our own RNG (SplitMix64) so that every seeded choice in the data layer is reproducible across
/// processes, machines and .NET versions; System.Random's algorithm is an implementation detail.
/// </summary>
internal sealed class SplitMix64
{
    private const ulong Gamma = 0x9E3779B97F4A7C15UL;
    private ulong _state;

    public SplitMix64(ulong seed) => _state = seed;

    /// <summary>An independent stream for (seed, domain, stream): lets each source or epoch have
    /// its own generator, so adding a source or skipping an epoch never shifts the others, and the
    /// domain keeps different users of the same seed (sampler, splitter) uncorrelated.</summary>
    public static SplitMix64 ForStream(long seed, string domain, ulong stream) =>
        new(Mix(unchecked((ulong)seed) ^ Mix(StableHash.Of(domain) ^ Mix(stream + Gamma))));

    public static ulong Mix(ulong z)
    {
        unchecked
        {
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }

    public ulong NextUInt64()
    {
        unchecked
        {
            _state += Gamma;
        }

        return Mix(_state);
    }

    /// <summary>Uniform in [0, maxExclusive), without modulo bias.</summary>
    public int NextInt(int maxExclusive)
    {
        if (maxExclusive <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(maxExclusive), maxExclusive, "must be positive");
        }

        var bound = (ulong)maxExclusive;
        // Values below 2^64 mod bound would make the low residues more likely; reject them.
        var threshold = unchecked(0UL - bound) % bound;
        while (true)
        {
            var r = NextUInt64();
            if (r >= threshold)
            {
                return (int)(r % bound);
            }
        }
    }

    /// <summary>Uniform in [min, maxInclusive].</summary>
    public int NextInt(int min, int maxInclusive) => min + NextInt(maxInclusive - min + 1);

    /// <summary>Uniform in [0, 1), from the top 53 bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    public void Shuffle<T>(IList<T> items)
    {
        for (var i = items.Count - 1; i > 0; i--)
        {
            var j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }
}
