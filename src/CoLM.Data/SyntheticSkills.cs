using CoLM.Determinism;
namespace CoLM.Data;

/// <summary>
/// The ten skills of the synthetic mixture. Shares mimic MathInstruct's imbalance: four large
/// sources hold 73% of the data, six small ones the rest, the smallest 0.8%. All are below the mean
/// size except the four large ones, so CoLM's "keep small sources" rule has something to do.
/// Prompts stay under ~25 characters so [BOS] prompt answer [EOS] fits the default 48 tokens.
/// </summary>
internal static class SyntheticSkills
{
    private const string Lower = "abcdefghijklmnopqrstuvwxyz";

    // Counting over a 4-letter alphabet keeps the counts varied (0..8) instead of mostly 0 or 1.
    private const string CountAlphabet = "abcd";

    private const int Huge = 1_000_000;

    public static IReadOnlyList<SyntheticSkill> All { get; } =
    [
        new("arith.add", 0.22, 50 * 50, rng =>
        {
            int a = rng.NextInt(0, 49), b = rng.NextInt(0, 49);
            return ($"add {a} {b} =", (a + b).ToString(Inv));
        }),
        new("arith.sub", 0.19, 50 * 51 / 2, rng =>
        {
            // a >= b keeps answers non-negative, so the answer alphabet stays digits only.
            int a = rng.NextInt(0, 49), b = rng.NextInt(0, a);
            return ($"sub {a} {b} =", (a - b).ToString(Inv));
        }),
        new("string.reverse", 0.17, Huge, rng =>
        {
            var word = Word(rng, Lower, 3, 6);
            return ($"rev {word} =", new string(word.Reverse().ToArray()));
        }),
        new("arith.max", 0.15, 50 * 50, rng =>
        {
            int a = rng.NextInt(0, 49), b = rng.NextInt(0, 49);
            return ($"max {a} {b} =", Math.Max(a, b).ToString(Inv));
        }),
        new("string.upper", 0.08, Huge, rng =>
        {
            var word = Word(rng, Lower, 3, 6);
            return ($"upper {word} =", word.ToUpperInvariant());
        }),
        new("string.count", 0.065, Huge, rng =>
        {
            var word = Word(rng, CountAlphabet, 4, 8);
            var letter = CountAlphabet[rng.NextInt(CountAlphabet.Length)];
            return ($"count {letter} in {word} =", word.Count(c => c == letter).ToString(Inv));
        }),
        new("arith.mul", 0.05, 10 * 10, rng =>
        {
            int a = rng.NextInt(0, 9), b = rng.NextInt(0, 9);
            return ($"mul {a} {b} =", (a * b).ToString(Inv));
        }),
        new("string.sort", 0.04, Huge, rng =>
        {
            var digits = Word(rng, "0123456789", 3, 6);
            return ($"sort {digits} =", new string(digits.Order().ToArray()));
        }),
        new("logic.parity", 0.027, 1000, rng =>
        {
            var n = rng.NextInt(0, 999);
            return ($"odd {n} =", n % 2 == 1 ? "yes" : "no");
        }),
        new("string.next", 0.008, Huge, rng =>
        {
            // Every letter shifted to the next one, z wrapping to a.
            var word = Word(rng, Lower, 1, 4);
            return ($"next {word} =", new string(word.Select(c => c == 'z' ? 'a' : (char)(c + 1)).ToArray()));
        }),
    ];

    /// <summary>
    /// The planted control's large source, made the way careless data collection makes one. Half
    /// its training examples are copies of 8 prompts; the rest are fresh additions (30%) and three
    /// rarer operations (min 10%, mul 5%, dbl 5%). It is evaluated on the task itself: the four
    /// operations equally, never a copied prompt. A coreset that sees through the copies spends its
    /// budget on the rare operations; a uniform sample spends half of it on copies.
    /// </summary>
    public static SyntheticSkill Planted { get; } = new("arith.planted", 0.80, 100 * 100 + 100 * 100 + 20 * 10 + 100, rng =>
    {
        int u = rng.NextInt(0, 99);
        if (u < 50)
        {
            // Numbers from 100 up: a copy never collides with a fresh or held-out prompt.
            int k = rng.NextInt(0, 7);
            return ($"add {100 + k} {7 * k % 16} =", (100 + k + 7 * k % 16).ToString(Inv));
        }
        return PlantedOperation(rng, u < 80 ? 0 : u < 90 ? 1 : u < 95 ? 2 : 3);
    })
    {
        DrawHeldout = rng => PlantedOperation(rng, rng.NextInt(0, 3)),
    };

    /// <summary>
    /// The planted control: <see cref="Planted"/> as the one large source (80%) beside three small
    /// sources kept whole by source balancing (upper 8%, parity 8%, next 4%). With b = 16 from a
    /// pool of 32 the large source gets about 10 picks a step from about 26 candidates, enough
    /// for the choice within it to matter. An earlier control put it among the ten default skills,
    /// where it got about 2 picks a step and could not separate methods (docs/RESULTS.md, session 5).
    /// </summary>
    public static IReadOnlyList<SyntheticSkill> PlantedControl { get; } =
    [
        Planted,
        Named("string.upper") with { Share = 0.08 },
        Named("logic.parity") with { Share = 0.08 },
        Named("string.next") with { Share = 0.04 },
    ];

    internal static SyntheticSkill Named(string name) => All.Single(s => s.Name == name);

    private static (string Prompt, string Target) PlantedOperation(SplitMix64 rng, int operation)
    {
        int a = rng.NextInt(0, 99), b = rng.NextInt(0, 99);
        return operation switch
        {
            0 => ($"add {a} {b} =", (a + b).ToString(Inv)),
            1 => ($"min {a} {b} =", Math.Min(a, b).ToString(Inv)),
            2 => ($"mul {a % 20} {b % 10} =", (a % 20 * (b % 10)).ToString(Inv)),
            _ => ($"dbl {a} =", (2 * a).ToString(Inv)),
        };
    }

    private static IFormatProvider Inv => System.Globalization.CultureInfo.InvariantCulture;

    internal static string Word(SplitMix64 rng, string alphabet, int minLength, int maxLength)
    {
        var chars = new char[rng.NextInt(minLength, maxLength)];
        for (var i = 0; i < chars.Length; i++)
        {
            chars[i] = alphabet[rng.NextInt(alphabet.Length)];
        }

        return new string(chars);
    }
}
