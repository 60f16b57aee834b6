namespace CoLM.Data;

/// <summary>
/// Chooses held-out examples per source: min(heldoutPerSource, count/5), so a held-out set never
/// eats more than a fifth of a small source. Choices are seeded per source (stable hash of its
/// name), so they do not depend on the other sources or on file order within other sources.
/// </summary>
internal static class HeldoutSplitter
{
    /// <summary>Returns a flag per example: true = held-out.</summary>
    public static bool[] Choose(IReadOnlyList<RawExample> examples, int heldoutPerSource, long seed)
    {
        var promptCounts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var e in examples)
        {
            promptCounts[e.Prompt] = promptCounts.GetValueOrDefault(e.Prompt) + 1;
        }

        var isHeldout = new bool[examples.Count];
        var bySource = Enumerable.Range(0, examples.Count).GroupBy(i => examples[i].Source, StringComparer.Ordinal);
        foreach (var group in bySource)
        {
            var indices = group.ToList();
            var wanted = Math.Min(heldoutPerSource, indices.Count / 5);
            SplitMix64.ForStream(seed, "heldout", StableHash.Of(group.Key)).Shuffle(indices);

            // Prefer prompts that occur once in the whole file, so the same question is not both
            // trained on and evaluated; fall back to duplicates only if a source has too few.
            var picked = indices.Where(i => promptCounts[examples[i].Prompt] == 1).Take(wanted).ToList();
            picked.AddRange(indices.Where(i => promptCounts[examples[i].Prompt] != 1).Take(wanted - picked.Count));
            foreach (var i in picked)
            {
                isHeldout[i] = true;
            }
        }

        return isHeldout;
    }
}
