using System.Text.Json;
using System.Text.RegularExpressions;

namespace CoLM.System.Tests;

/// <summary>`colm bench step` times the step a run takes, not a copy of it.</summary>
public sealed partial class StepBenchmarkTests : IDisposable
{
    private readonly TinyRun _tiny = new();

    public void Dispose() => _tiny.Dispose();

    [Fact]
    public async Task Bench_step_selects_the_same_coreset_at_step_1_as_a_run_with_the_same_settings_and_seed()
    {
        // Two trainers, sources balanced with small sources kept whole, K = 4 probes: the parts the
        // old copy of the step got wrong (probes, small sources, the deal, the selection seed).
        string[] sets = [.. TinyRun.TinySets, "colm.train.trainers=2", "colm.run.seed=11"];

        var bench = await ColmProcess.RunAsync(_tiny.Root, ["bench", "step", .. TinyRun.SetArgs(sets)]);
        await _tiny.TrainAsync("run", "colm.train.trainers=2", "colm.run.seed=11", "colm.train.steps=1");

        Assert.True(bench.ExitCode == 0, bench.Stdout + bench.Stderr);
        var printed = DigestLine().Match(bench.Stdout);
        Assert.True(printed.Success, bench.Stdout);
        var step1 = File.ReadLines(Path.Combine(_tiny.RunPath("run"), "metrics.jsonl"))
            .Select(l => JsonDocument.Parse(l).RootElement)
            .Single(r => r.GetProperty("kind").GetString() == "step" && r.GetProperty("step").GetInt64() == 1);
        Assert.Equal(step1.GetProperty("coresetDigest").GetString(), printed.Groups[1].Value);
        Assert.Contains("| CoLM (b from L) |", bench.Stdout, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"step 1 coreset digest: ([0-9a-f]{16})")]
    private static partial Regex DigestLine();
}
