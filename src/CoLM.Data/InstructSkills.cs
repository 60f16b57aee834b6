using CoLM.Determinism;
namespace CoLM.Data;

/// <summary>
/// The "instruct" mixture: the ten skills of <see cref="SyntheticSkills.All"/> at the same shares,
/// each large source built like real instruction data. Every large source has sub-types of unequal
/// size and difficulty (one-digit sums beside three-term ones, short words beside long ones) and a
/// block of near-duplicates: 12 popular prompts, repeated with small formatting changes. Small
/// sources keep one format but have room for 200+ held-out prompts each. Held-out examples follow
/// each source's sub-types in their training proportions, without the near-duplicates (a test set
/// does not repeat the popular prompts), and one extra source, ood.compose, exists only in held-out:
/// "rev upper WORD =", reverse then upper-case, two trained skills composed in a way no training
/// example shows.
/// </summary>
internal static class InstructSkills
{
    private const string Lower = "abcdefghijklmnopqrstuvwxyz";
    private const int Huge = 1_000_000;

    public static IReadOnlyList<SyntheticSkill> All { get; } =
    [
        Structured("arith.add", 0.22, nearDuplicates: 0.20,
            (0.30, rng => Add(rng.NextInt(0, 9), rng.NextInt(0, 9))),
            (0.40, rng => Add(rng.NextInt(10, 99), rng.NextInt(10, 99))),
            (0.10, rng =>
            {
                int a = rng.NextInt(0, 99), b = rng.NextInt(0, 99), c = rng.NextInt(0, 99);
                return ($"add {a} {b} {c} =", Text(a + b + c));
            })),
        Structured("arith.sub", 0.19, nearDuplicates: 0.15,
            (0.35, rng => Sub(rng, 0, 9, 0)),
            (0.40, rng => Sub(rng, 10, 99, 0)),
            (0.10, rng => Sub(rng, 100, 999, 99))),
        Structured("string.reverse", 0.17, nearDuplicates: 0.15,
            (0.40, rng => Reverse(SyntheticSkills.Word(rng, Lower, 3, 4))),
            (0.30, rng => Reverse(SyntheticSkills.Word(rng, Lower, 5, 6))),
            (0.15, rng => Reverse(SyntheticSkills.Word(rng, Lower, 7, 9)))),
        Structured("arith.max", 0.15, nearDuplicates: 0.20,
            (0.60, rng =>
            {
                int a = rng.NextInt(0, 99), b = rng.NextInt(0, 99);
                return ($"max {a} {b} =", Text(Math.Max(a, b)));
            }),
            (0.20, rng =>
            {
                int a = rng.NextInt(0, 99), b = rng.NextInt(0, 99), c = rng.NextInt(0, 99);
                return ($"max {a} {b} {c} =", Text(Math.Max(a, Math.Max(b, c))));
            })),
        SyntheticSkills.Named("string.upper"),
        SyntheticSkills.Named("string.count"),
        // One-digit products as in "skills", and two-digit by one-digit: 500 prompts, room for 200 held out.
        new("arith.mul", 0.05, 50 * 10, rng =>
        {
            int a = rng.NextInt(0, 49), b = rng.NextInt(0, 9);
            return ($"mul {a} {b} =", Text(a * b));
        }),
        SyntheticSkills.Named("string.sort"),
        SyntheticSkills.Named("logic.parity"),
        SyntheticSkills.Named("string.next"),
        new("ood.compose", 0, Huge, rng =>
        {
            var word = SyntheticSkills.Word(rng, Lower, 3, 6);
            return ($"rev upper {word} =", new string(word.Reverse().ToArray()).ToUpperInvariant());
        }),
    ];

    /// <summary>
    /// A large source: sub-types drawn by weight, plus a share of near-duplicates of 12 prompts
    /// taken once from the sub-types (fixed per source, not per seed: popular prompts are a property
    /// of the data source), each copy written one of three ways. Held-out draws skip the copies.
    /// </summary>
    private static SyntheticSkill Structured(string name, double share, double nearDuplicates,
        params (double Weight, Func<SplitMix64, (string Prompt, string Target)> Draw)[] subTypes)
    {
        double total = subTypes.Sum(t => t.Weight);
        (string, string) DrawSubType(SplitMix64 rng)
        {
            double u = rng.NextDouble() * total;
            foreach (var (weight, draw) in subTypes)
            {
                if (u < weight) return draw(rng);
                u -= weight;
            }
            return subTypes[^1].Draw(rng);
        }

        var popularRng = RandomStreams.Data(0, DataStream.InstructPopular + name, 0);
        var popular = Enumerable.Range(0, 12).Select(_ => DrawSubType(popularRng)).ToArray();
        return new SyntheticSkill(name, share, Huge, rng =>
        {
            if (rng.NextDouble() >= nearDuplicates) return DrawSubType(rng);
            var (prompt, target) = popular[rng.NextInt(0, popular.Length - 1)];
            return (NearDuplicate(prompt, rng.NextInt(0, 2)), target);
        })
        {
            DrawHeldout = DrawSubType,
        };
    }

    /// <summary>The same request written three ways: as is, without the space before '=', with a doubled first space.</summary>
    private static string NearDuplicate(string prompt, int variant) => variant switch
    {
        0 => prompt,
        1 => prompt.Replace(" =", "=", StringComparison.Ordinal),
        _ => prompt.Insert(prompt.IndexOf(' ', StringComparison.Ordinal), " "),
    };

    private static (string, string) Add(int a, int b) => ($"add {a} {b} =", Text(a + b));

    private static (string, string) Sub(SplitMix64 rng, int low, int high, int maxSubtrahend)
    {
        int a = rng.NextInt(low, high);
        int b = rng.NextInt(0, maxSubtrahend == 0 ? a : maxSubtrahend);
        return ($"sub {a} {b} =", Text(a - b));
    }

    private static (string, string) Reverse(string word) => ($"rev {word} =", new string(word.Reverse().ToArray()));

    private static string Text(int n) => n.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
