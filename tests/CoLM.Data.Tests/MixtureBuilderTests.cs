using System.Text.Json;
using CoLM.Data;
using Xunit;

namespace CoLM.Data.Tests;

public class MixtureBuilderTests
{
    private static readonly CharTokenizer Tok = CharTokenizer.Instance;

    [Fact]
    public void Synthetic_mixture_has_sorted_sources_consistent_ids_and_counts()
    {
        var m = MixtureBuilder.FromSynthetic(new SyntheticMixtureSettings(), Tok, 48);

        Assert.Equal(m.SourceNames.Order(StringComparer.Ordinal), m.SourceNames);
        Assert.Equal(SyntheticMixture.SourceNames, m.SourceNames);
        Assert.Equal(4000, m.Train.Count);
        Assert.Equal(160, m.Heldout.Count);
        Assert.Equal(Enumerable.Range(0, m.Train.Count), m.Train.Select(e => e.Id));
        Assert.Equal(Enumerable.Range(0, m.Heldout.Count), m.Heldout.Select(e => e.Id));
        Assert.Equal(4000, m.TrainCountPerSource.Sum());
        Assert.All(m.HeldoutCountPerSource, n => Assert.Equal(16, n));
        Assert.Equal(0, m.TruncatedCount);
        Assert.Equal(48, m.MaxLength);
        for (var i = 0; i < m.Heldout.Count; i++)
        {
            Assert.Equal(m.HeldoutRaw[i].Source, m.SourceNames[m.Heldout[i].SourceId]);
            Assert.Equal(m.HeldoutRaw[i].Target, Tok.Decode(m.Heldout[i].Tokens.AsSpan(m.Heldout[i].PromptLength)));
        }
    }

    [Fact]
    public void Small_window_counts_truncations_over_both_splits()
    {
        var m = MixtureBuilder.FromSynthetic(new SyntheticMixtureSettings(), Tok, 12);
        var expected = m.Train.Concat(m.Heldout).Count(e => e.Truncated);
        Assert.True(expected > 0);
        Assert.Equal(expected, m.TruncatedCount);
        Assert.All(m.Train, e => Assert.InRange(e.Tokens.Length, 2, 12));
        Assert.All(m.Train, e => Assert.True(e.TargetLength >= 1));
    }

    [Fact]
    public void Jsonl_heldout_is_min_of_setting_and_a_fifth_chosen_by_seed()
    {
        using var dir = new TempDir();
        var path = WriteMixture(dir, ("big", 100), ("mid", 20), ("tiny", 4));

        var m = MixtureBuilder.FromJsonl(path, new JsonlFields(), Tok, 64, heldoutPerSource: 8, seed: 5);
        var again = MixtureBuilder.FromJsonl(path, new JsonlFields(), Tok, 64, heldoutPerSource: 8, seed: 5);
        var other = MixtureBuilder.FromJsonl(path, new JsonlFields(), Tok, 64, heldoutPerSource: 8, seed: 6);

        Assert.Equal(new[] { "big", "mid", "tiny" }, m.SourceNames);
        Assert.Equal(new[] { 8, 4, 0 }, m.HeldoutCountPerSource);
        Assert.Equal(new[] { 92, 16, 4 }, m.TrainCountPerSource);
        Assert.Equal(m.HeldoutRaw, again.HeldoutRaw);
        Assert.NotEqual(m.HeldoutRaw, other.HeldoutRaw);
        var trainPrompts = m.Train.Select(e => Tok.Decode(e.Tokens.AsSpan(0, e.PromptLength))).ToHashSet();
        Assert.DoesNotContain(m.HeldoutRaw, e => trainPrompts.Contains(e.Prompt));
    }

    [Fact]
    public void Jsonl_heldout_avoids_prompts_duplicated_in_the_file()
    {
        using var dir = new TempDir();
        // 10 examples; only "e" and "unique" occur once, so they are the only clean picks.
        var lines = new[] { "a", "a", "b", "b", "c", "c", "d", "d", "e", "unique" }
            .Select(p => JsonSerializer.Serialize(new { source = "s", instruction = p, output = "x" }))
            .ToArray();
        var path = dir.Jsonl(lines);
        var m = MixtureBuilder.FromJsonl(path, new JsonlFields(), Tok, 64, heldoutPerSource: 2, seed: 1);
        Assert.Equal(2, m.Heldout.Count);
        Assert.Equal(new[] { "e", "unique" }, m.HeldoutRaw.Select(e => e.Prompt).Order());
    }

    [Fact]
    public void Jsonl_errors_propagate_with_their_origin()
    {
        using var dir = new TempDir();
        var path = dir.Jsonl("""{"source":"s","instruction":"q"}""");
        var ex = Assert.Throws<DataFormatException>(() => MixtureBuilder.FromJsonl(path, new JsonlFields(), Tok, 64, 4, 1));
        Assert.Contains("file.jsonl:1", ex.Message);
        Assert.Contains("'output'", ex.Message);
    }

    [Fact]
    public void Negative_heldout_setting_is_rejected()
    {
        using var dir = new TempDir();
        var path = WriteMixture(dir, ("s", 10));
        var ex = Assert.Throws<DataFormatException>(() => MixtureBuilder.FromJsonl(path, new JsonlFields(), Tok, 64, -1, 1));
        Assert.Equal("heldoutPerSource", ex.Origin);
    }

    private static string WriteMixture(TempDir dir, params (string Source, int Count)[] sources)
    {
        var lines = sources
            .SelectMany(s => Enumerable.Range(0, s.Count).Select(i =>
                JsonSerializer.Serialize(new { source = s.Source, instruction = $"{s.Source} question {i}", output = $"{i}" })))
            .ToArray();
        return dir.Jsonl(lines);
    }
}
