using CoLM.Determinism;
namespace CoLM.Data;

/// <summary>
/// Chooses held-out examples per source: min(heldoutPerSource, count/5), so a held-out set never
/// eats more than a fifth of a small source. Choices are seeded per source (stable hash of its
/// name), so they do not depend on the other sources or on file order within other sources.
/// </summary>
internal static class HeldoutSplitter
{
    /// <summary>Returns a flag per example: true = held-out.</summary>
    public static bool[] Choose(IReadOnlyList<RawExample> examples, int heldoutPerSource, long seed) =>
        Choose(examples.Count, i => examples[i].Source, i => examples[i].Prompt, heldoutPerSource, seed);

    /// <summary>
    /// The same choice from each example's source and a key that is equal exactly when prompts are equal (the prompt
    /// itself, or a hash of it when the examples are not held in memory).
    /// </summary>
    public static bool[] Choose<TKey>(int count, Func<int, string> sourceOf, Func<int, TKey> promptKeyOf, int heldoutPerSource, long seed)
        where TKey : notnull
    {
        var promptCounts = new Dictionary<TKey, int>();
        for (int i = 0; i < count; i++)
        {
            var key = promptKeyOf(i);
            promptCounts[key] = promptCounts.GetValueOrDefault(key) + 1;
        }

        var isHeldout = new bool[count];
        var bySource = Enumerable.Range(0, count).GroupBy(sourceOf, StringComparer.Ordinal);
        foreach (var group in bySource)
        {
            var indices = group.ToList();
            var wanted = Math.Min(heldoutPerSource, indices.Count / 5);
            RandomStreams.Data(seed, DataStream.Heldout, StableHash.Of(group.Key)).Shuffle(indices);

            // Prefer prompts that occur once in the whole file, so the same question is not both
            // trained on and evaluated; fall back to duplicates only if a source has too few.
            var picked = indices.Where(i => promptCounts[promptKeyOf(i)] == 1).Take(wanted).ToList();
            picked.AddRange(indices.Where(i => promptCounts[promptKeyOf(i)] != 1).Take(wanted - picked.Count));
            foreach (var i in picked)
            {
                isHeldout[i] = true;
            }
        }

        return isHeldout;
    }
}
