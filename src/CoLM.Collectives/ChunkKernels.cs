using System.Numerics;

namespace CoLM.Collectives;

/// <summary>
/// The arithmetic of the in-process group: rank r works on chunk r of every rank's buffer. Each
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
    /// For each element in [start, end): sum over ranks in rank order 0..n-1, then store the sum in
    /// every rank's buffer. Vector lanes are independent IEEE additions, so the bits do not depend
    /// on the vector width or on where a chunk edge falls.
    /// </summary>
    public static void SumInRankOrder(nint[] buffers, int start, int end)
    {
        var n = buffers.Length;
        var i = start;
        if (Vector.IsHardwareAccelerated)
        {
            var width = Vector<float>.Count;
            for (; i <= end - width; i += width)
            {
                var sum = Vector.Load((float*)buffers[0] + i);
                for (var r = 1; r < n; r++)
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
            var sum = ((float*)buffers[0])[i];
            for (var r = 1; r < n; r++)
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
