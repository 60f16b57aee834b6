namespace CoLM.Selection;

/// <summary>Which sources count as small (COLM.md step 2).</summary>
public static class SmallSources
{
    /// <summary>
    /// True for each source whose training-set count is below the mean count. Sources with count 0
    /// are left out of the mean (an id gap should not drag the mean down) and are never small.
    /// </summary>
    public static bool[] BelowMeanSize(IReadOnlyList<int> sourceCounts)
    {
        ArgumentNullException.ThrowIfNull(sourceCounts);
        long sum = 0;
        int present = 0;
        for (int i = 0; i < sourceCounts.Count; i++)
        {
            if (sourceCounts[i] < 0)
                throw new ArgumentException($"Source {i} has a negative count {sourceCounts[i]}.", nameof(sourceCounts));
            if (sourceCounts[i] == 0) continue;
            sum += sourceCounts[i];
            present++;
        }

        var small = new bool[sourceCounts.Count];
        if (present == 0) return small;
        // Compare count * present < sum in integers: exact, no rounding of the mean.
        for (int i = 0; i < small.Length; i++)
            small[i] = sourceCounts[i] > 0 && (long)sourceCounts[i] * present < sum;
        return small;
    }
}
