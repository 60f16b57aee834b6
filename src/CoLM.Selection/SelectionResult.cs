namespace CoLM.Selection;

/// <summary>Turns chosen pool indices into the record the coordinator ships to trainers.</summary>
internal static class SelectionResult
{
    /// <param name="weights">Per chosen index; null for uniform weight 1.</param>
    public static CoresetSelection Build(PoolSketch pool, int[] poolIndices, int slots, int keptSmall, int degenerate, float[]? weights = null)
    {
        var ids = new int[poolIndices.Length];
        for (int i = 0; i < ids.Length; i++) ids[i] = pool.ExampleIds[poolIndices[i]];
        if (weights is null)
        {
            weights = new float[poolIndices.Length];
            Array.Fill(weights, 1f);
        }

        int[] perSource = SourceTable.CountPerSource(poolIndices, pool.SourceIds, slots);
        return new CoresetSelection(ids, weights, perSource, keptSmall, degenerate);
    }
}
