namespace CoLM.Training;

/// <summary>Splits a list of example ids into contiguous, nearly equal shares, one per trainer.</summary>
public static class WorkShares
{
    public static int[][] Split(IReadOnlyList<int> items, int parts)
    {
        var result = new int[parts][];
        for (int p = 0; p < parts; p++)
        {
            int start = (int)((long)items.Count * p / parts), end = (int)((long)items.Count * (p + 1) / parts);
            result[p] = items.Skip(start).Take(end - start).ToArray();
        }
        return result;
    }
}
