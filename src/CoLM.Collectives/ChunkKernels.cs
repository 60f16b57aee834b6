using System.Numerics;

namespace CoLM.Collectives;

/// <summary>
/// The arithmetic of the in-process group: rank r works on chunk r of every rank's buffer.
/// Chunk bounds and summation order are the canonical ones of <see cref="RingReductionOrder"/>. Each
/// element is read from every rank and written back to every rank by the same thread, so the
/// whole all-reduce touches each byte twice (one read, one write) and needs no staging copy.
/// </summary>
internal static unsafe class ChunkKernels
{
    /// <summary>
    /// Chunk edges fall on multiples of a cache line from the buffer start, so two ranks do not
    /// write the same line (exactly never when buffers are line-aligned) and each chunk is whole vectors.
    /// </summary>
    private const int CacheLineBytes = 64;

    /// <summary>[start, end) of rank's chunk out of count elements of elementSize bytes.</summary>
    public static (int Start, int End) Bounds(int count, int rank, int worldSize, int elementSize)
    {
        return (Edge(count, rank, worldSize, elementSize), Edge(count, rank + 1, worldSize, elementSize));
    }

    /// <summary>
    /// For each element in [start, end) of chunk <paramref name="chunk"/>: sum over ranks in the
    /// canonical ring order of <see cref="RingReductionOrder"/> (a left fold starting at rank
    /// chunk + 1 and ending with rank chunk), then store the sum in every rank's buffer. Vector
    /// lanes are independent IEEE additions, so the bits do not depend on the vector width or on
    /// where a chunk edge falls.
    /// </summary>
    public static void SumInRingOrder(nint[] buffers, int chunk, int start, int end)
    {
        var n = buffers.Length;
        var first = RingReductionOrder.FirstRank(chunk, n);
        var i = start;
        if (Vector.IsHardwareAccelerated)
        {
            var width = Vector<float>.Count;
            for (; i <= end - width; i += width)
            {
                var sum = Vector.Load((float*)buffers[first] + i);
                for (int k = 1, r = Next(first, n); k < n; k++, r = Next(r, n))
                {
                    sum += Vector.Load((float*)buffers[r] + i);
                }

                for (var r = 0; r < n; r++)
                {
                    Vector.Store(sum, (float*)buffers[r] + i);
                }
            }
        }

        for (; i < end; i++)
        {
            var sum = ((float*)buffers[first])[i];
            for (int k = 1, r = Next(first, n); k < n; k++, r = Next(r, n))
            {
                sum += ((float*)buffers[r])[i];
            }

            for (var r = 0; r < n; r++)
            {
                ((float*)buffers[r])[i] = sum;
            }
        }
    }

    /// <summary>Copies bytes [start, end) of root's buffer into every other rank's buffer.</summary>
    public static void CopyFromRoot(nint[] buffers, int root, int start, int end)
    {
        var source = new ReadOnlySpan<byte>((byte*)buffers[root] + start, end - start);
        for (var r = 0; r < buffers.Length; r++)
        {
            if (r != root)
            {
                source.CopyTo(new Span<byte>((byte*)buffers[r] + start, end - start));
            }
        }
    }

    private static int Next(int rank, int worldSize) => rank + 1 == worldSize ? 0 : rank + 1;

    private static int Edge(int count, int rank, int worldSize, int elementSize)
    {
        if (rank >= worldSize)
        {
            return count;
        }

        var perLine = Math.Max(1, CacheLineBytes / elementSize);
        var edge = (int)((long)count * rank / worldSize);
        return edge - (edge % perLine);
    }
}
