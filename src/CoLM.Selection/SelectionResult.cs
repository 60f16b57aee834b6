namespace CoLM.Selection;

/// <summary>Turns chosen pool indices into the record the coordinator ships to trainers.</summary>
internal static class SelectionResult
{
    public static CoresetSelection Build(PoolSketch pool, int[] poolIndices, int slots, int keptSmall, int degenerate)
    {
        var ids = new int[poolIndices.Length];
        for (int i = 0; i < ids.Length; i++) ids[i] = pool.ExampleIds[poolIndices[i]];
        var weights = new float[poolIndices.Length];
        Array.Fill(weights, 1f);
        int[] perSource = SourceTable.CountPerSource(poolIndices, pool.SourceIds, slots);
        return new CoresetSelection(ids, weights, perSource, keptSmall, degenerate);
    }
}
