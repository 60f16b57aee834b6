using System.Text.Json;

namespace CoLM.System.Tests;

/// <summary>colm.train.max-failures: a run that fails restarts itself from its newest checkpoint, through the real `colm` process.</summary>
public sealed class RunRestartTests : IDisposable
{
    private readonly TinyRun _tiny = new();

    public void Dispose() => _tiny.Dispose();

    private static readonly string[] Diverging =
        ["colm.train.steps=6", "colm.train.checkpoint-every=2", "colm.train.fault-injection.diverge-at-step=3", "colm.train.fault-injection.diverge-rank=1"];

    [Fact]
    public async Task A_failed_run_restarts_from_its_checkpoint_and_ends_bit_identical_to_an_uninterrupted_run()
    {
        var clean = await _tiny.TrainAsync("clean", "colm.train.steps=6", "colm.train.checkpoint-every=2");
        Assert.Equal("completed", clean.State);

        var o = await ColmProcess.RunAsync(_tiny.Root, ["train", "--quiet", .. TinyRun.SetArgs(_tiny.Sets("restarted", [.. Diverging, "colm.train.max-failures=1"]))]);

        Assert.True(o.ExitCode == 0, o.Stdout + o.Stderr);
        Assert.Contains("colm: run failed after step 2: replica parameter checksums differ after step 3", o.Stderr);
        Assert.Contains("colm: restarting from the newest checkpoint (step-000002); failure 1 of colm.train.max-failures = 1", o.Stderr);
        var run = _tiny.RunPath("restarted");
        var rows = File.ReadLines(Path.Combine(run, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        var restart = Assert.Single(rows, r => r.GetProperty("kind").GetString() == "run-restart");
        Assert.Equal((2, 2), (restart.GetProperty("failedAfterStep").GetInt32(), restart.GetProperty("fromStep").GetInt32()));
        Assert.Equal([1L, 2L, 3L, 4L, 5L, 6L], rows.Where(r => r.GetProperty("kind").GetString() == "step").Select(r => r.GetProperty("step").GetInt64()));
        Assert.Contains("\"completed\"", File.ReadAllText(Path.Combine(run, "status.json")));
        // Same seed, same steps: the restarted run's final parameters and optimizer state are the uninterrupted run's, byte for byte.
        Assert.Equal(TinyRun.FinalState(_tiny.RunPath("clean"), 6), TinyRun.FinalState(run, 6));
    }

    [Fact]
    public async Task Without_max_failures_the_same_fault_ends_the_run_as_before()
    {
        var o = await ColmProcess.RunAsync(_tiny.Root, ["train", "--quiet", .. TinyRun.SetArgs(_tiny.Sets("once", Diverging))]);

        Assert.Equal(1, o.ExitCode);
        Assert.Contains("colm: run failed: replica parameter checksums differ after step 3", o.Stderr);
        Assert.DoesNotContain("restarting", o.Stderr);
    }
}
