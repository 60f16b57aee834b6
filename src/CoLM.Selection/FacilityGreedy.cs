using System.Numerics;

namespace CoLM.Selection;

/// <summary>
/// Greedy maximisation of F(S) = sum_i max_{s in S} sim(i, s) over a precomputed similarity matrix.
/// Plain and lazy greedy share one gain function and one tie rule (larger gain, then lower index),
/// and the gain is monotone in floating point too, so both return exactly the same sequence.
/// </summary>
internal static class FacilityGreedy
{
    /// <summary>Turns an L1 distance matrix into S = max(D) - D in place (COLM.md step 7).</summary>
    public static void DistancesToSimilarities(Span<float> matrix)
    {
        float max = 0f;
        foreach (float d in matrix) max = Math.Max(max, d);
        for (int i = 0; i < matrix.Length; i++) matrix[i] = max - matrix[i];
    }

    public static int[] Plain(float[] sim, int n, int k)
    {
        var cover = new float[n];
        var taken = new bool[n];
        var order = new int[k];
        for (int step = 0; step < k; step++)
        {
            int best = -1;
            float bestGain = 0f;
            for (int c = 0; c < n; c++)
            {
                if (taken[c]) continue;
                float gain = Gain(sim.AsSpan(c * n, n), cover);
                if (best < 0 || gain > bestGain) (best, bestGain) = (c, gain);
            }

            taken[best] = true;
            order[step] = best;
            Cover(sim.AsSpan(best * n, n), cover);
        }

        return order;
    }

    public static int[] Lazy(float[] sim, int n, int k)
    {
        var cover = new float[n];
        // freshAt[c]: the step at which c's stored bound was computed; a bound from an earlier
        // step is only an upper bound (gains shrink as the cover grows).
        var freshAt = new int[n];
        var heap = new PriorityQueue<int, (float Gain, int Index)>(n, BestFirst.Instance);
        for (int c = 0; c < n; c++) heap.Enqueue(c, (Gain(sim.AsSpan(c * n, n), cover), c));

        var order = new int[k];
        for (int step = 0; step < k; step++)
        {
            while (true)
            {
                heap.TryDequeue(out int c, out _);
                if (freshAt[c] == step)
                {
                    // Everything still queued has bound <= this exact gain (ties: higher index),
                    // so no other candidate can beat it under plain greedy's rule.
                    order[step] = c;
                    Cover(sim.AsSpan(c * n, n), cover);
                    break;
                }

                freshAt[c] = step;
                heap.Enqueue(c, (Gain(sim.AsSpan(c * n, n), cover), c));
            }
        }

        return order;
    }

    /// <summary>sum_i max(0, sim(c, i) - cover_i): rows of a symmetric matrix are its columns.</summary>
    private static float Gain(ReadOnlySpan<float> simRow, ReadOnlySpan<float> cover)
    {
        int w = Vector<float>.Count;
        var acc = Vector<float>.Zero;
        int i = 0;
        for (; i <= simRow.Length - w; i += w)
            acc += Vector.Max(Vector<float>.Zero, new Vector<float>(simRow[i..]) - new Vector<float>(cover[i..]));
        float sum = Vector.Sum(acc);
        for (; i < simRow.Length; i++) sum += Math.Max(0f, simRow[i] - cover[i]);
        return sum;
    }

    private static void Cover(ReadOnlySpan<float> simRow, Span<float> cover)
    {
        for (int i = 0; i < cover.Length; i++) cover[i] = Math.Max(cover[i], simRow[i]);
    }

    private sealed class BestFirst : IComparer<(float Gain, int Index)>
    {
        public static readonly BestFirst Instance = new();

        public int Compare((float Gain, int Index) x, (float Gain, int Index) y)
        {
            int byGain = y.Gain.CompareTo(x.Gain);
            return byGain != 0 ? byGain : x.Index.CompareTo(y.Index);
        }
    }
}
