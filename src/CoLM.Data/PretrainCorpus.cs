using System.Globalization;
using CoLM.Determinism;

namespace CoLM.Data;

/// <summary>
/// The broad synthetic text `colm pretrain` teaches the built-in decoder before any fine-tuning,
/// as web text teaches a language model before instruction tuning: number and letter sequences,
/// copies, case pairs, single-digit facts, parity and order statements, in plain sentences. None of
/// its lines has the form of a fine-tuning prompt ("add 3 4 =", "rev abc ="): the fine-tuning
/// tasks compose what it teaches into a new format, so the mixture still has something to teach.
/// </summary>
public static class PretrainCorpus
{
    private const string Lower = "abcdefghijklmnopqrstuvwxyz";
    private const string Upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

    /// <summary>The number of kinds of line <see cref="Line"/> draws from, uniformly.</summary>
    public const int Kinds = 8;

    /// <summary>Line <paramref name="index"/> of the corpus of <paramref name="seed"/>: the same text for the same pair, on every machine.</summary>
    public static string Line(long seed, long index)
    {
        var rng = RandomStreams.Data(seed, DataStream.PretrainLine, (ulong)index);
        return rng.NextInt(Kinds) switch
        {
            0 => Counting(rng, up: true),
            1 => Counting(rng, up: false),
            2 => Copy(rng),
            3 => CasePairs(rng),
            4 => SingleDigitFact(rng),
            5 => Parity(rng),
            6 => Order(rng),
            _ => LetterRun(rng),
        };
    }

    private static string Counting(SplitMix64 rng, bool up)
    {
        int start = rng.NextInt(0, 199), length = rng.NextInt(3, 6);
        var numbers = Enumerable.Range(0, length).Select(i => up ? start + i : Math.Max(0, start - i)).Distinct();
        return string.Join(' ', numbers.Select(n => n.ToString(CultureInfo.InvariantCulture)));
    }

    private static string Copy(SplitMix64 rng)
    {
        var word = Word(rng, rng.NextInt(2) == 0 ? Lower : "0123456789", 2, 7);
        return $"{word} again is {word}";
    }

    private static string CasePairs(SplitMix64 rng)
    {
        int start = rng.NextInt(0, 22), length = rng.NextInt(2, 4);
        return string.Join(' ', Enumerable.Range(start, length).Select(i => $"{Lower[i]}{Upper[i]}"));
    }

    private static string SingleDigitFact(SplitMix64 rng)
    {
        int a = rng.NextInt(0, 9), b = rng.NextInt(0, 9);
        return rng.NextInt(3) switch
        {
            0 => $"{a} plus {b} is {a + b}",
            1 => $"{a} times {b} is {a * b}",
            _ => $"{a + b} minus {b} is {a}",
        };
    }

    private static string Parity(SplitMix64 rng)
    {
        int n = rng.NextInt(0, 999);
        return $"{n} is {(n % 2 == 0 ? "even" : "odd")}";
    }

    private static string Order(SplitMix64 rng)
    {
        int a = rng.NextInt(0, 99), b = rng.NextInt(0, 99);
        return a == b ? $"{a} equals {b}" : $"{Math.Max(a, b)} is more than {Math.Min(a, b)}";
    }

    private static string LetterRun(SplitMix64 rng)
    {
        int start = rng.NextInt(0, 21), length = rng.NextInt(3, 5);
        var letters = Lower.AsSpan(start, length).ToString();
        return rng.NextInt(2) == 0 ? $"after {letters[0]} comes {letters[1]}" : string.Join(' ', letters.ToCharArray());
    }

    private static string Word(SplitMix64 rng, string alphabet, int minLength, int maxLength)
    {
        var chars = new char[rng.NextInt(minLength, maxLength)];
        for (int i = 0; i < chars.Length; i++) chars[i] = alphabet[rng.NextInt(alphabet.Length)];
        return new string(chars);
    }
}
