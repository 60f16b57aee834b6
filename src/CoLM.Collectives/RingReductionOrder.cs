namespace CoLM.Collectives;

/// <summary>
/// The one summation order every <see cref="ICollective"/> backend uses for
/// <see cref="ICollective.AllReduceSum"/>, so that in-process, TCP and any later backend give
/// bit-identical results for every world size.
/// <para>
/// The buffer of <c>count</c> floats is cut into <c>worldSize</c> chunks by
/// <see cref="ChunkBounds"/> (edges on multiples of a 64-byte cache line from the buffer start).
/// Every element of chunk <c>c</c> is a left fold over the ranks' values starting at rank
/// <c>(c + 1) mod n</c>, then <c>(c + 2) mod n</c>, ..., ending with rank <c>c</c>:
/// <c>((x[c+1] + x[c+2]) + ...) + x[c]</c>, one rounding per addition. That is the order a ring
/// reduce-scatter produces when, at step s, rank r sends its partial sum of chunk
/// <c>(r - s - 1) mod n</c> to rank <c>r + 1</c>, which adds its own values to it.
/// </para>
/// <para>
/// For two ranks this is the same as rank order 0, 1 (IEEE addition is commutative, so
/// <c>x1 + x0</c> and <c>x0 + x1</c> have the same bits); from three ranks on it differs.
/// </para>
/// </summary>
public static class RingReductionOrder
{
    /// <summary>
    /// [Start, End) of chunk <paramref name="chunk"/> out of <paramref name="count"/> floats cut
    /// into <paramref name="worldSize"/> chunks. Chunks are contiguous, cover the buffer, and
    /// may be empty when the buffer is short.
    /// </summary>
    public static (int Start, int End) ChunkBounds(int count, int chunk, int worldSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfLessThan(worldSize, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(chunk);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(chunk, worldSize);
        return ChunkKernels.Bounds(count, chunk, worldSize, sizeof(float));
    }

    /// <summary>The rank whose value starts the fold of chunk <paramref name="chunk"/>: (chunk + 1) mod n.</summary>
    public static int FirstRank(int chunk, int worldSize) => (chunk + 1) % worldSize;

    /// <summary>The rank added at position <paramref name="position"/> (0 = first) of chunk <paramref name="chunk"/>'s fold.</summary>
    public static int RankAt(int chunk, int position, int worldSize) => (chunk + 1 + position) % worldSize;
}
