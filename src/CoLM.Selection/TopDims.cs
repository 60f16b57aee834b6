namespace CoLM.Selection;

/// <summary>COLM.md step 6: the h dims with the largest |mean feature| of one source.</summary>
internal static class TopDims
{
    /// <summary>
    /// Writes the indices of the <paramref name="h"/> largest |values| into <paramref name="mask"/>,
    /// ascending; ties at the threshold go to lower indices. Linear time (quickselect), which matters
    /// at D = 327,680 per source per step.
    /// </summary>
    public static void Select(ReadOnlySpan<float> values, int h, Span<float> scratch, Span<int> mask)
    {
        Span<float> work = scratch[..values.Length];
        for (int d = 0; d < values.Length; d++) work[d] = MathF.Abs(values[d]);
        float threshold = KthLargest(work, h - 1);

        int taken = 0;
        for (int d = 0; d < values.Length; d++)
            if (MathF.Abs(values[d]) > threshold) taken++;
        // Dims equal to the threshold fill what is left, lowest index first; keep ascending order
        // with a single merge pass.
        int ties = h - taken;
        int w = 0;
        for (int d = 0; d < values.Length && w < h; d++)
        {
            float a = MathF.Abs(values[d]);
            if (a > threshold) mask[w++] = d;
            else if (a == threshold && ties > 0)
            {
                mask[w++] = d;
                ties--;
            }
        }
    }

    /// <summary>The value that would sit at position <paramref name="k"/> if sorted descending; reorders <paramref name="a"/>.</summary>
    private static float KthLargest(Span<float> a, int k)
    {
        int lo = 0, hi = a.Length - 1;
        while (lo < hi)
        {
            float pivot = MedianOfThree(a[lo], a[lo + (hi - lo) / 2], a[hi]);
            int i = lo, j = hi;
            while (i <= j)
            {
                while (a[i] > pivot) i++;
                while (a[j] < pivot) j--;
                if (i > j) break;
                (a[i], a[j]) = (a[j], a[i]);
                i++;
                j--;
            }

            // Now a[lo..j] >= pivot, a[i..hi] <= pivot and anything strictly between equals pivot.
            if (k <= j) hi = j;
            else if (k >= i) lo = i;
            else return pivot;
        }

        return a[k];
    }

    private static float MedianOfThree(float x, float y, float z) =>
        Math.Max(Math.Min(x, y), Math.Min(Math.Max(x, y), z));
}
