using System.Globalization;
using CoLM.Data;
using Xunit;

namespace CoLM.Data.Tests;

public class InstructMixtureTests
{
    private static readonly SyntheticMixtureSettings Instruct = new(Mixture: SyntheticMixtureSettings.Instruct, HeldoutPerSource: 200);

    [Fact]
    public void Large_sources_have_sub_types_of_unequal_size_and_a_block_of_near_duplicates()
    {
        var train = SyntheticMixture.Generate(Instruct, out _);
        var add = train.Where(e => e.Source == "arith.add").Select(e => e.Prompt).ToArray();
        Assert.Equal(880, add.Length);

        // Near-duplicates: 12 requests written three ways, about a fifth of the source.
        string Canonical(string p) => string.Join(' ', p.Replace("=", " =", StringComparison.Ordinal).Split(' ', StringSplitOptions.RemoveEmptyEntries));
        var requests = add.GroupBy(Canonical).OrderByDescending(g => g.Count()).ToArray();
        var popular = requests.Take(12).ToArray();
        Assert.InRange(popular.Sum(g => g.Count()) / (double)add.Length, 0.17, 0.27);
        Assert.All(popular, g => Assert.True(g.Distinct().Count() >= 2, $"'{g.Key}' is written one way only"));
        // A popular request repeats far more than any other (one-digit sums repeat too: 100 of them fill 30%).
        Assert.True(popular[^1].Count() >= 1.5 * requests[12].Count(), $"12th most common {popular[^1].Count()}, 13th {requests[12].Count()}");

        // Sub-types: one-digit and two-digit pairs, three-term sums (rarer).
        var fresh = requests.Skip(12).SelectMany(g => g.Select(_ => g.Key.Split(' '))).ToArray();
        int oneDigit = fresh.Count(p => p.Length == 4 && p[1].Length == 1 && p[2].Length == 1);
        int twoDigit = fresh.Count(p => p.Length == 4 && p[1].Length == 2 && p[2].Length == 2);
        int threeTerm = fresh.Count(p => p.Length == 5);
        Assert.True(threeTerm > 0 && threeTerm < oneDigit && oneDigit < twoDigit, $"one-digit {oneDigit}, two-digit {twoDigit}, three-term {threeTerm}");
    }

    [Fact]
    public void Every_source_has_200_held_out_examples_and_the_composite_task_is_held_out_only()
    {
        var train = SyntheticMixture.Generate(Instruct, out var heldout);

        var perSource = heldout.GroupBy(e => e.Source).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(11, perSource.Count);
        Assert.All(perSource.Values, n => Assert.Equal(200, n));
        Assert.DoesNotContain(train, e => e.Source == "ood.compose");
        Assert.Equal(4000, train.Count);
        var trainPrompts = train.Select(e => e.Prompt).ToHashSet();
        Assert.DoesNotContain(heldout, e => trainPrompts.Contains(e.Prompt));
        Assert.All(train.Concat(heldout), e => Assert.True(Answer(e.Prompt) == e.Target, $"{e.Prompt} -> {e.Target}"));

        var tok = CharTokenizer.Instance;
        Assert.True(train.Concat(heldout).Max(e => 2 + tok.Encode(e.Prompt).Length + tok.Encode(e.Target).Length) <= 40);
    }

    [Fact]
    public void Held_out_examples_follow_the_sub_types_without_the_popular_requests()
    {
        var train = SyntheticMixture.Generate(Instruct, out var heldout);
        var held = heldout.Where(e => e.Source == "arith.add").Select(e => e.Prompt).ToArray();
        Assert.DoesNotContain(held, p => p.Contains("  ", StringComparison.Ordinal) || p.EndsWith("=", StringComparison.Ordinal) && !p.EndsWith(" =", StringComparison.Ordinal));
        Assert.Contains(held, p => p.Split(' ').Length == 5);
    }

    /// <summary>Each prompt's answer, computed independently of the generator.</summary>
    private static string Answer(string prompt)
    {
        var p = prompt.Replace("=", " =", StringComparison.Ordinal).Split(' ', StringSplitOptions.RemoveEmptyEntries)[..^1];
        int N(int i) => int.Parse(p[i], CultureInfo.InvariantCulture);
        string S(int n) => n.ToString(CultureInfo.InvariantCulture);
        return p[0] switch
        {
            "add" => S(p.Skip(1).Sum(x => int.Parse(x, CultureInfo.InvariantCulture))),
            "sub" => S(N(1) - N(2)),
            "max" => S(p.Skip(1).Max(x => int.Parse(x, CultureInfo.InvariantCulture))),
            "mul" => S(N(1) * N(2)),
            "rev" when p[1] == "upper" => new string(p[2].Reverse().ToArray()).ToUpperInvariant(),
            "rev" => new string(p[1].Reverse().ToArray()),
            "upper" => p[1].ToUpperInvariant(),
            "count" => S(p[3].Count(c => c == p[1][0])),
            "sort" => new string(p[1].Order().ToArray()),
            "odd" => N(1) % 2 == 1 ? "yes" : "no",
            "next" => new string(p[1].Select(c => c == 'z' ? 'a' : (char)(c + 1)).ToArray()),
            _ => throw new InvalidOperationException($"unknown prompt '{prompt}'"),
        };
    }
}
