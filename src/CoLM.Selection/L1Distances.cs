using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace CoLM.Selection;

/// <summary>
/// The pairwise L1 distance matrix of facility location (COLM.md step 7), the one O(n^2 h) part of
/// selection. A plain row-against-row loop is memory bound (one load per abs-difference, and the
/// rows do not fit in cache), so the work is tiled: a tile of <see cref="TileRows"/> columns and a
/// slice of <see cref="SliceDims"/> dims stay in L1 while every earlier row streams past them once,
/// four pairs per load of the streamed row. Tiles run on all cores; each result depends only on
/// its inputs, never on scheduling.
/// </summary>
internal static class L1Distances
{
    private const int TileRows = 16;
    private const int SliceDims = 1024;

    // Below this many abs-differences thread start-up costs more than it saves.
    private const long ParallelThreshold = 1L << 21;

    /// <summary>Fills <paramref name="distances"/> [n x n] (symmetric, zero diagonal) from row-major features [n x dims].</summary>
    public static void Compute(float[] features, int n, int dims, float[] distances) =>
        Compute(features, 0, dims, n, dims, distances);

    /// <summary>Rows start at <paramref name="start"/> and lie <paramref name="stride"/> floats apart (stride >= dims).</summary>
    public static void Compute(float[] features, int start, int stride, int n, int dims, float[] distances)
    {
        int tiles = (n + TileRows - 1) / TileRows;
        if ((long)n * n * dims / 2 < ParallelThreshold || Environment.ProcessorCount == 1)
        {
            var partial = new float[n * TileRows];
            for (int t = 0; t < tiles; t++) Tile(features, start, stride, n, dims, distances, t, partial);
        }
        else
        {
            // Tile t pairs with t earlier rows' worth of work; pairing t with tiles-1-t evens the load.
            Parallel.For(0, (tiles + 1) / 2, () => new float[n * TileRows], (p, _, partial) =>
            {
                Tile(features, start, stride, n, dims, distances, p, partial);
                if (tiles - 1 - p != p) Tile(features, start, stride, n, dims, distances, tiles - 1 - p, partial);
                return partial;
            }, _ => { });
        }

        // Lower triangle from the upper: rows only ever write their own tile's columns above.
        for (int i = 0; i < n; i++)
        {
            distances[(long)i * n + i] = 0f;
            for (int j = i + 1; j < n; j++) distances[(long)j * n + i] = distances[(long)i * n + j];
        }
    }

    /// <summary>
    /// Distances from every row i to the tile's columns j > i, accumulated slice by slice in a
    /// private [rows x TileRows] buffer so no two threads ever touch the same cache line.
    /// </summary>
    private static void Tile(float[] features, int start, int stride, int n, int dims, float[] distances, int tile, float[] partial)
    {
        int j0 = tile * TileRows;
        int width = Math.Min(TileRows, n - j0);
        int rows = j0 + width - 1; // rows 0 .. j0+width-2 have some j > i in this tile
        Array.Clear(partial, 0, rows * TileRows);
        for (int k0 = 0; k0 < dims; k0 += SliceDims)
        {
            int len = Math.Min(SliceDims, dims - k0);
            for (int i = 0; i < rows; i++)
            {
                ref float a = ref features[start + (long)i * stride + k0];
                ref float acc = ref partial[i * TileRows];
                int first = Math.Max(0, i + 1 - j0); // first tile column with j > i
                int c = first;
                for (; c + 4 <= width; c += 4)
                {
                    Four(ref a, ref features[start + (long)(j0 + c) * stride + k0], stride, len, out float d0, out float d1, out float d2, out float d3);
                    Unsafe.Add(ref acc, c) += d0;
                    Unsafe.Add(ref acc, c + 1) += d1;
                    Unsafe.Add(ref acc, c + 2) += d2;
                    Unsafe.Add(ref acc, c + 3) += d3;
                }

                for (; c < width; c++)
                    Unsafe.Add(ref acc, c) += One(ref a, ref features[start + (long)(j0 + c) * stride + k0], len);
            }
        }

        for (int i = 0; i < rows; i++)
        {
            int first = Math.Max(0, i + 1 - j0);
            partial.AsSpan(i * TileRows + first, width - first).CopyTo(distances.AsSpan(i * n + j0 + first, width - first));
        }
    }

    /// <summary>L1 distances over <paramref name="len"/> dims from row a to the four rows starting at b, <paramref name="stride"/> apart.</summary>
    private static void Four(ref float a, ref float b, int stride, int len, out float d0, out float d1, out float d2, out float d3)
    {
        ref float b1 = ref Unsafe.Add(ref b, stride);
        ref float b2 = ref Unsafe.Add(ref b, 2 * stride);
        ref float b3 = ref Unsafe.Add(ref b, 3 * stride);
        int k = 0;
        d0 = d1 = d2 = d3 = 0f;
        if (Vector512.IsHardwareAccelerated && len >= Vector512<float>.Count)
        {
            Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
            for (; k <= len - Vector512<float>.Count; k += Vector512<float>.Count)
            {
                var x = Vector512.LoadUnsafe(ref a, (nuint)k);
                s0 += Vector512.Abs(x - Vector512.LoadUnsafe(ref b, (nuint)k));
                s1 += Vector512.Abs(x - Vector512.LoadUnsafe(ref b1, (nuint)k));
                s2 += Vector512.Abs(x - Vector512.LoadUnsafe(ref b2, (nuint)k));
                s3 += Vector512.Abs(x - Vector512.LoadUnsafe(ref b3, (nuint)k));
            }

            d0 = Vector512.Sum(s0); d1 = Vector512.Sum(s1); d2 = Vector512.Sum(s2); d3 = Vector512.Sum(s3);
        }
        else if (Vector256.IsHardwareAccelerated && len >= Vector256<float>.Count)
        {
            Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default;
            for (; k <= len - Vector256<float>.Count; k += Vector256<float>.Count)
            {
                var x = Vector256.LoadUnsafe(ref a, (nuint)k);
                s0 += Vector256.Abs(x - Vector256.LoadUnsafe(ref b, (nuint)k));
                s1 += Vector256.Abs(x - Vector256.LoadUnsafe(ref b1, (nuint)k));
                s2 += Vector256.Abs(x - Vector256.LoadUnsafe(ref b2, (nuint)k));
                s3 += Vector256.Abs(x - Vector256.LoadUnsafe(ref b3, (nuint)k));
            }

            d0 = Vector256.Sum(s0); d1 = Vector256.Sum(s1); d2 = Vector256.Sum(s2); d3 = Vector256.Sum(s3);
        }

        for (; k < len; k++)
        {
            float x = Unsafe.Add(ref a, k);
            d0 += MathF.Abs(x - Unsafe.Add(ref b, k));
            d1 += MathF.Abs(x - Unsafe.Add(ref b1, k));
            d2 += MathF.Abs(x - Unsafe.Add(ref b2, k));
            d3 += MathF.Abs(x - Unsafe.Add(ref b3, k));
        }
    }

    private static float One(ref float a, ref float b, int len)
    {
        int k = 0;
        float d = 0f;
        if (Vector256.IsHardwareAccelerated && len >= Vector256<float>.Count)
        {
            Vector256<float> s = default;
            for (; k <= len - Vector256<float>.Count; k += Vector256<float>.Count)
                s += Vector256.Abs(Vector256.LoadUnsafe(ref a, (nuint)k) - Vector256.LoadUnsafe(ref b, (nuint)k));
            d = Vector256.Sum(s);
        }

        for (; k < len; k++) d += MathF.Abs(Unsafe.Add(ref a, k) - Unsafe.Add(ref b, k));
        return d;
    }
}
