namespace CoLM.Selection;

/// <summary>Groups pool rows by source id; the common bookkeeping of allocation and selection.</summary>
internal static class SourceTable
{
    /// <summary>Number of source-id slots needed: every id in the pool and every id the small-source mask knows.</summary>
    public static int SlotCount(ReadOnlySpan<int> poolSourceIds, int knownSources)
    {
        int count = knownSources;
        foreach (int s in poolSourceIds)
        {
            if (s < 0) throw new ArgumentException($"Source ids must not be negative; got {s}.");
            if (s >= count) count = s + 1;
        }

        return count;
    }

    /// <summary>Ids beyond the mask are sources the data loader did not know about: treat them as large.</summary>
    public static bool IsSmall(bool[] isSmallSource, int sourceId) =>
        sourceId < isSmallSource.Length && isSmallSource[sourceId];

    /// <summary>Pool indices of each source, ascending, indexed by source id.</summary>
    public static int[][] RowsBySource(ReadOnlySpan<int> poolSourceIds, int slots)
    {
        var counts = new int[slots];
        foreach (int s in poolSourceIds) counts[s]++;
        var rows = new int[slots][];
        for (int q = 0; q < slots; q++) rows[q] = new int[counts[q]];
        Array.Clear(counts);
        for (int i = 0; i < poolSourceIds.Length; i++)
        {
            int s = poolSourceIds[i];
            rows[s][counts[s]++] = i;
        }

        return rows;
    }

    /// <summary>How many of the given pool indices come from each source.</summary>
    public static int[] CountPerSource(ReadOnlySpan<int> poolIndices, ReadOnlySpan<int> poolSourceIds, int slots)
    {
        var counts = new int[slots];
        foreach (int i in poolIndices) counts[poolSourceIds[i]]++;
        return counts;
    }
}
