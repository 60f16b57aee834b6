using CoLM.Data;
using Xunit;

namespace CoLM.Data.Tests;

public class SyntheticMixtureTests
{
    private static readonly SyntheticMixtureSettings Defaults = new();

    [Fact]
    public void Same_seed_gives_identical_output()
    {
        var a = SyntheticMixture.Generate(Defaults, out var ha);
        var b = SyntheticMixture.Generate(Defaults, out var hb);
        Assert.Equal(a, b);
        Assert.Equal(ha, hb);
    }

    [Fact]
    public void Different_seed_differs()
    {
        var a = SyntheticMixture.Generate(Defaults, out var ha);
        var b = SyntheticMixture.Generate(Defaults with { Seed = 99 }, out var hb);
        Assert.NotEqual(a, b);
        Assert.NotEqual(ha, hb);
    }

    [Fact]
    public void Output_is_pinned_for_the_default_seed()
    {
        // The generator uses its own RNG, so these exact values must hold on every machine and
        // runtime; if this fails, runs with the same seed are no longer comparable.
        var train = SyntheticMixture.Generate(Defaults, out var heldout);
        Assert.Equal(
            new[] { ("string.reverse", "rev wwqmrl =", "lrmqww"), ("arith.max", "max 6 40 =", "40"), ("arith.add", "add 31 33 =", "64") },
            train.Take(3).Select(e => (e.Source, e.Prompt, e.Target)));
        Assert.Equal(("arith.add", "add 18 33 =", "51"), (heldout[0].Source, heldout[0].Prompt, heldout[0].Target));
        var counts = train.GroupBy(e => e.Source).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(880, counts["arith.add"]);
        Assert.Equal(32, counts["string.next"]);
    }

    [Fact]
    public void Sizes_are_imbalanced_like_MathInstruct()
    {
        var train = SyntheticMixture.Generate(Defaults, out _);
        var sizes = train.GroupBy(e => e.Source).Select(g => g.Count()).OrderByDescending(n => n).ToArray();
        Assert.True(sizes.Length >= 8, $"{sizes.Length} sources");
        var topFour = sizes.Take(4).Sum() / (double)train.Count;
        Assert.InRange(topFour, 0.65, 0.80);
        Assert.True(sizes[^1] < 0.01 * train.Count, $"smallest source has {sizes[^1]}");
        var mean = sizes.Average();
        Assert.Equal(4, sizes.Count(n => n >= mean));
    }

    [Fact]
    public void Heldout_has_every_source_exactly_and_shares_no_prompt_with_train()
    {
        var settings = Defaults with { HeldoutPerSource = 24 };
        var train = SyntheticMixture.Generate(settings, out var heldout);
        var trainSources = train.Select(e => e.Source).Distinct().ToHashSet();
        var perSource = heldout.GroupBy(e => e.Source).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(trainSources.Order(), perSource.Keys.Order());
        Assert.All(perSource.Values, n => Assert.Equal(24, n));
        var trainPrompts = train.Select(e => e.Prompt).ToHashSet();
        Assert.DoesNotContain(heldout, e => trainPrompts.Contains(e.Prompt));
        Assert.Equal(heldout.Count, heldout.Select(e => e.Prompt).Distinct().Count());
    }

    [Fact]
    public void Every_example_fits_the_default_window()
    {
        var tok = CharTokenizer.Instance;
        var train = SyntheticMixture.Generate(Defaults, out var heldout);
        var longest = train.Concat(heldout).Max(e => 2 + tok.Encode(e.Prompt).Length + tok.Encode(e.Target).Length);
        Assert.True(longest <= 40, $"longest example has {longest} tokens");
    }

    [Fact]
    public void Bad_settings_name_the_setting()
    {
        Assert.Equal("TrainExamples", Assert.Throws<DataFormatException>(() => SyntheticMixture.Generate(Defaults with { TrainExamples = 3 }, out _)).Origin);
        Assert.Equal("HeldoutPerSource", Assert.Throws<DataFormatException>(() => SyntheticMixture.Generate(Defaults with { HeldoutPerSource = -1 }, out _)).Origin);
        Assert.Equal("HeldoutPerSource", Assert.Throws<DataFormatException>(() => SyntheticMixture.Generate(Defaults with { HeldoutPerSource = 1000 }, out _)).Origin);
    }

    [Fact]
    public void Small_settings_still_give_every_source_an_example()
    {
        var train = SyntheticMixture.Generate(new SyntheticMixtureSettings(TrainExamples: 20, HeldoutPerSource: 2), out var heldout);
        Assert.Equal(20, train.Count);
        Assert.Equal(10, train.Select(e => e.Source).Distinct().Count());
        Assert.Equal(20, heldout.Count);
    }

    [Fact]
    public void The_planted_control_is_one_large_source_of_half_copies_and_rare_operations_beside_three_small_ones()
    {
        var planted = Defaults with { Mixture = SyntheticMixtureSettings.PlantedControl, HeldoutPerSource = 40 };
        var train = SyntheticMixture.Generate(planted, out var heldout);

        var source = train.Where(e => e.Source == "arith.planted").ToArray();
        Assert.Equal(3200, source.Length);
        Assert.Equal(["arith.planted", "logic.parity", "string.next", "string.upper"], train.Select(e => e.Source).Distinct().Order(StringComparer.Ordinal));
        var copies = source.Where(e => int.Parse(e.Prompt.Split(' ')[1]) >= 100).ToArray();
        Assert.InRange(copies.Length, 0.45 * source.Length, 0.55 * source.Length);
        Assert.Equal(8, copies.Select(e => e.Prompt).Distinct().Count());
        double Share(string op) => source.Count(e => e.Prompt.StartsWith(op + " ", StringComparison.Ordinal)) / (double)source.Length;
        Assert.InRange(Share("min"), 0.07, 0.13);
        Assert.InRange(Share("mul"), 0.03, 0.07);
        Assert.InRange(Share("dbl"), 0.03, 0.07);

        // Evaluated on the task, not on the copies: each operation about a quarter, no copied prompt, no train prompt.
        var held = heldout.Where(e => e.Source == "arith.planted").ToArray();
        Assert.Equal(40, held.Length);
        Assert.All(["add", "min", "mul", "dbl"], op => Assert.InRange(held.Count(e => e.Prompt.StartsWith(op + " ", StringComparison.Ordinal)), 4, 18));
        Assert.DoesNotContain(held, e => copies.Any(c => c.Prompt == e.Prompt));
        var trainPrompts = source.Select(e => e.Prompt).ToHashSet();
        Assert.DoesNotContain(held, e => trainPrompts.Contains(e.Prompt));
        Assert.All(held.Concat(source), e => Assert.True(Answers(e.Prompt) == e.Target, e.Prompt));
    }

    [Fact]
    public void An_unknown_mixture_name_is_refused_by_name()
    {
        var e = Assert.Throws<DataFormatException>(() => SyntheticMixture.Generate(Defaults with { Mixture = "nope" }, out _));
        Assert.Equal("Mixture", e.Origin);
    }

    /// <summary>The planted source's answers, computed independently of the generator.</summary>
    private static string Answers(string prompt)
    {
        var p = prompt.Split(' ');
        int a = int.Parse(p[1]);
        return p[0] switch
        {
            "add" => (a + int.Parse(p[2])).ToString(),
            "min" => Math.Min(a, int.Parse(p[2])).ToString(),
            "mul" => (a * int.Parse(p[2])).ToString(),
            _ => (2 * a).ToString(),
        };
    }
}
