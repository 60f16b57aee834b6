using CoLM.Determinism;
namespace CoLM.Data;

/// <summary>
/// A small, deterministic, imbalanced data mixture of ten skills that a ~1M-parameter character
/// model can learn in a few hundred steps: a fast stand-in for MathInstruct when testing CoLM.
/// </summary>
public static class SyntheticMixture
{
    /// <summary>Names of the default mixture's sources, sorted ordinally as DataMixture numbers them.</summary>
    public static IReadOnlyList<string> SourceNames { get; } =
        SyntheticSkills.All.Select(s => s.Name).Order(StringComparer.Ordinal).ToArray();

    private static IReadOnlyList<SyntheticSkill> SkillsOf(SyntheticMixtureSettings s) => s.Mixture switch
    {
        SyntheticMixtureSettings.Skills => SyntheticSkills.All,
        SyntheticMixtureSettings.Instruct => InstructSkills.All,
        SyntheticMixtureSettings.PlantedControl => SyntheticSkills.PlantedControl,
        _ => throw new DataFormatException(nameof(s.Mixture), $"unknown synthetic mixture '{s.Mixture}' (skills, instruct or planted)"),
    };

    /// <summary>
    /// Returns the train examples (shuffled across sources) and, through heldout, exactly
    /// HeldoutPerSource examples per source whose prompts never occur in train.
    /// </summary>
    public static IReadOnlyList<RawExample> Generate(SyntheticMixtureSettings s, out IReadOnlyList<RawExample> heldout)
    {
        ArgumentNullException.ThrowIfNull(s);
        var skills = SkillsOf(s);
        Validate(s, skills);

        var counts = TrainCounts(s.TrainExamples, skills);
        var train = new List<RawExample>(s.TrainExamples);
        var held = new List<RawExample>(s.HeldoutPerSource * skills.Count);
        for (var k = 0; k < skills.Count; k++)
        {
            // One stream per source: changing one skill's size never reshuffles another's examples.
            var rng = RandomStreams.Data(s.Seed, DataStream.SyntheticSource, (ulong)k);
            GenerateSource(skills[k], counts[k], s.HeldoutPerSource, rng, train, held);
        }

        RandomStreams.Data(s.Seed, DataStream.SyntheticOrder, 0).Shuffle(train);
        heldout = held;
        return train;
    }

    private static void Validate(SyntheticMixtureSettings s, IReadOnlyList<SyntheticSkill> skills)
    {
        int trained = skills.Count(k => !k.HeldoutOnly);
        if (s.TrainExamples < trained)
        {
            throw new DataFormatException(nameof(s.TrainExamples), $"must be at least {trained}, one per trained source (got {s.TrainExamples})");
        }

        if (s.HeldoutPerSource < 0)
        {
            throw new DataFormatException(nameof(s.HeldoutPerSource), $"must not be negative (got {s.HeldoutPerSource})");
        }

        var tightest = skills.MinBy(k => k.PromptSpace)!;
        if (s.HeldoutPerSource > tightest.PromptSpace / 2)
        {
            throw new DataFormatException(
                nameof(s.HeldoutPerSource),
                $"at most {tightest.PromptSpace / 2} (source '{tightest.Name}' has only {tightest.PromptSpace} distinct prompts; got {s.HeldoutPerSource})");
        }
    }

    /// <summary>Splits the total by share with largest remainders, so counts sum exactly; every
    /// trained source gets at least one example, a held-out-only one none.</summary>
    private static int[] TrainCounts(int total, IReadOnlyList<SyntheticSkill> skills)
    {
        var shareSum = skills.Sum(k => k.Share);
        var exact = skills.Select(k => k.Share / shareSum * total).ToArray();
        var counts = skills.Select((k, i) => k.HeldoutOnly ? 0 : Math.Max(1, (int)Math.Floor(exact[i]))).ToArray();
        var order = Enumerable.Range(0, skills.Count)
            .Where(i => !skills[i].HeldoutOnly)
            .OrderByDescending(i => exact[i] - Math.Floor(exact[i]))
            .ThenBy(i => i)
            .ToArray();
        var j = 0;
        while (counts.Sum() < total)
        {
            counts[order[j++ % order.Length]]++;
        }

        while (counts.Sum() > total)
        {
            // Only reachable when the at-least-one floor overshoots: take from the largest.
            counts[Array.IndexOf(counts, counts.Max())]--;
        }

        return counts;
    }

    private static void GenerateSource(
        SyntheticSkill skill, int trainCount, int heldoutCount, SplitMix64 rng, List<RawExample> train, List<RawExample> held)
    {
        // Held-out first, with distinct prompts, then train rejects those prompts: no leakage.
        var heldPrompts = new HashSet<string>(StringComparer.Ordinal);
        var drawHeldout = skill.DrawHeldout ?? skill.Draw;
        while (heldPrompts.Count < heldoutCount)
        {
            var (prompt, target) = drawHeldout(rng);
            if (heldPrompts.Add(prompt))
            {
                held.Add(new RawExample(skill.Name, prompt, target, $"synthetic/{skill.Name}/heldout:{heldPrompts.Count}"));
            }
        }

        var made = 0;
        while (made < trainCount)
        {
            var (prompt, target) = skill.Draw(rng);
            if (!heldPrompts.Contains(prompt))
            {
                made++;
                train.Add(new RawExample(skill.Name, prompt, target, $"synthetic/{skill.Name}/train:{made}"));
            }
        }
    }
}
