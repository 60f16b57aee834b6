using System.Text.Json;

namespace CoLM.System.Tests;

/// <summary>
/// The large sources' reserve (colm.selection.large-source-reserve) through the whole program: a
/// pool of 32 from the built-in mixture holds about 8.6 small-source examples, more than the
/// 4 that b = 8 leaves after R = max(4 large sources, ceil(0.25 * 8)) = 4.
/// </summary>
public sealed class SourceReserveTests : IDisposable
{
    private readonly TinyRun _tiny = new();

    public void Dispose() => _tiny.Dispose();

    [Fact]
    public async Task Small_sources_that_would_fill_the_budget_are_warned_about_sampled_and_counted_per_step()
    {
        string[] sets = _tiny.Sets("crowded", "colm.train.steps=4", "colm.selection.pool=32", "colm.selection.budget=8");
        var o = await ColmProcess.RunAsync(_tiny.Root, ["train", "--quiet", .. TinyRun.SetArgs(sets)]);

        Assert.True(o.ExitCode == 0, o.Stderr);
        Assert.Contains("colm: small sources hold", o.Stderr);
        Assert.Contains("R = 4 (colm.selection.large-source-reserve = 0.25)", o.Stderr);
        var steps = File.ReadLines(Path.Combine(_tiny.RunPath("crowded"), "metrics.jsonl"))
            .Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.GetProperty("kind").GetString() == "step").ToArray();
        Assert.Equal(4, steps.Length);
        foreach (var step in steps)
        {
            var selected = step.GetProperty("selected").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt32());
            Assert.Equal(8, selected.Values.Sum());
            if (step.GetProperty("smallLeftOut").GetInt32() > 0)
                Assert.True(selected.Count >= 4 + 1, $"a capped step still trains on every large source: {step}");
        }
        Assert.Contains(steps, s => s.GetProperty("smallLeftOut").GetInt32() > 0);
    }

    [Fact]
    public async Task A_budget_with_room_for_the_small_sources_gives_no_warning_and_leaves_nothing_out()
    {
        string[] sets = _tiny.Sets("roomy", "colm.train.steps=2", "colm.selection.pool=16", "colm.selection.budget=14");
        var o = await ColmProcess.RunAsync(_tiny.Root, ["train", "--quiet", .. TinyRun.SetArgs(sets)]);

        Assert.True(o.ExitCode == 0, o.Stderr);
        Assert.DoesNotContain("large-source-reserve", o.Stderr);
        Assert.All(File.ReadLines(Path.Combine(_tiny.RunPath("roomy"), "metrics.jsonl")).Where(l => l.Contains("\"kind\":\"step\"")),
            l => Assert.Contains("\"smallLeftOut\":0", l));
    }
}
