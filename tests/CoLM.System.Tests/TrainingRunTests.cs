using CoLM.Cluster.Runs;

namespace CoLM.System.Tests;

public sealed class TrainingRunTests : IDisposable
{
    private readonly TinyRun _tiny = new();

    public void Dispose() => _tiny.Dispose();

    [Fact]
    public async Task A_two_trainer_colm_run_lowers_held_out_loss_and_writes_a_complete_run_directory()
    {
        var result = await _tiny.TrainAsync("e2e", "colm.train.steps=40", "colm.train.eval-every=20",
            "colm.train.checkpoint-every=20", "colm.telemetry.exporter=file");

        Assert.Equal("completed", result.State);
        Assert.NotNull(result.Before);
        Assert.NotNull(result.After);
        Assert.True(result.After!.MeanLoss < result.Before!.MeanLoss - 0.5,
            $"held-out loss {result.Before.MeanLoss:0.000} -> {result.After.MeanLoss:0.000}");

        var dir = _tiny.RunPath("e2e");
        Assert.Contains("\"completed\"", File.ReadAllText(Path.Combine(dir, "status.json")));
        string report = File.ReadAllText(Path.Combine(dir, "report.md"));
        Assert.Contains("accuracy before", report);
        Assert.Contains("- model: built-in decoder from seed (dim 32, layers 2, heads 2)", report);
        // The pictures beside the report, linked from it: real PNGs.
        foreach (var picture in new[] { "loss.png", "sources.png" })
        {
            Assert.Contains($"]({picture})", report);
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(Path.Combine(dir, picture))[..4]);
        }
        var metrics = File.ReadAllLines(Path.Combine(dir, "metrics.jsonl"));
        // Each step row says what each rank did, how many tokens, and the gradient's norm.
        var row = global::System.Text.Json.JsonDocument.Parse(metrics.First(l => l.Contains("\"kind\":\"step\""))).RootElement;
        Assert.Equal(2, row.GetProperty("ranks").GetArrayLength());
        Assert.True(row.GetProperty("tokens").GetInt32() > 0);
        Assert.True(row.GetProperty("gradNorm").GetDouble() > 0);
        Assert.True(row.GetProperty("ranks")[1].GetProperty("peakMemoryBytes").GetInt64() > 0);
        Assert.Equal(40, metrics.Count(l => l.Contains("\"kind\":\"step\"")));
        Assert.Equal(3, metrics.Count(l => l.Contains("\"kind\":\"eval\"")));
        Assert.True(Directory.Exists(Path.Combine(dir, "checkpoints", "step-000040")));
        Assert.Empty(Directory.GetDirectories(Path.Combine(dir, "checkpoints"), ".*partial"));
        var telemetry = File.ReadAllText(Path.Combine(dir, "telemetry.jsonl"));
        Assert.Contains("\"colm.step\"", telemetry);
        Assert.Contains("\"colm.sketch\"", telemetry);
        Assert.Contains("colm.train.loss", telemetry);

        // The default mixture's held-out-only task is scored on its own and left out of the means.
        using var eval = global::System.Text.Json.JsonDocument.Parse(metrics.Last(l => l.Contains("\"kind\":\"eval\"")));
        var sources = eval.RootElement.GetProperty("sources").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetProperty("loss").GetDouble());
        Assert.True(sources.ContainsKey("ood.compose"));
        double trainedMean = sources.Where(s => s.Key != "ood.compose").Average(s => s.Value);
        Assert.Equal(trainedMean, eval.RootElement.GetProperty("meanLoss").GetDouble(), 9);
        Assert.Contains("The means leave out ood.compose", File.ReadAllText(Path.Combine(dir, "report.md")));
    }

    [Fact]
    public async Task Resuming_from_a_checkpoint_continues_bit_identically()
    {
        const int total = 8, half = 4;
        var straight = await _tiny.TrainAsync("straight", $"colm.train.steps={total}");
        Assert.Equal("completed", straight.State);

        var first = await _tiny.TrainAsync("resumed", $"colm.train.steps={total}", $"colm.train.stop-at-step={half}");
        Assert.Equal("stopped", first.State);
        Assert.Equal(half, first.Step);
        var second = await TinyRun.ResumeAsync(_tiny.RunPath("resumed"), "colm.train.stop-at-step=0");
        Assert.Equal("completed", second.State);
        Assert.Equal(total, second.Step);

        // Trainable weights and AdamW state, byte for byte.
        Assert.Equal(TinyRun.FinalState(_tiny.RunPath("straight"), total), TinyRun.FinalState(_tiny.RunPath("resumed"), total));
        Assert.Equal(File.ReadAllBytes(Path.Combine(_tiny.RunPath("straight"), "checkpoints", $"step-{total:D6}", "normalizer.bin")),
            File.ReadAllBytes(Path.Combine(_tiny.RunPath("resumed"), "checkpoints", $"step-{total:D6}", "normalizer.bin")));
    }

    [Fact]
    public async Task A_crashed_trainer_is_restarted_resynchronised_and_the_step_retried()
    {
        var clean = await _tiny.TrainAsync("clean", "colm.train.steps=6");
        var crashed = await _tiny.TrainAsync("crashed", "colm.train.steps=6",
            "colm.train.fault-injection.crash-at-step=3", "colm.train.fault-injection.crash-rank=1");

        Assert.Equal("completed", crashed.State);
        var metrics = File.ReadAllLines(Path.Combine(_tiny.RunPath("crashed"), "metrics.jsonl"));
        Assert.Single(metrics, l => l.Contains("\"kind\":\"restart\"") && l.Contains("\"rank\":1"));
        // Recovered from rank 0's replica (it committed step 2), with how long it took.
        var recovery = Assert.Single(metrics, l => l.Contains("\"kind\":\"recovery\""));
        Assert.Contains("\"step\":2,", recovery);
        Assert.Contains("\"source\":\"replica\",\"from\":\"rank 0\"", recovery);
        Assert.Equal(6, metrics.Count(l => l.Contains("\"kind\":\"step\"")));
        // The retried step draws the same pool and selection, so recovery changes nothing.
        Assert.Equal(TinyRun.FinalState(_tiny.RunPath("clean"), 6), TinyRun.FinalState(_tiny.RunPath("crashed"), 6));
    }

    /// <summary>
    /// Each rank crashes in turn, rank 0 included (recovery once copied rank 0's state whatever it
    /// held, so a restarted rank 0 silently took the run back to step 0): the final parameters are
    /// bit-identical to an uninterrupted run and every step is recorded exactly once, in order.
    /// </summary>
    [Theory]
    [InlineData(0, 1)]
    [InlineData(0, 4)]
    [InlineData(0, 6)]
    [InlineData(1, 1)]
    [InlineData(1, 5)]
    public async Task A_crash_of_any_rank_at_any_step_is_recovered_bit_identically_with_each_step_recorded_once(int rank, int step)
    {
        const int Steps = 6;
        var clean = await _tiny.TrainAsync("clean", $"colm.train.steps={Steps}");
        var crashed = await _tiny.TrainAsync("crashed", $"colm.train.steps={Steps}",
            $"colm.train.fault-injection.crash-at-step={step}", $"colm.train.fault-injection.crash-rank={rank}");

        Assert.Equal("completed", clean.State);
        Assert.True(crashed.State == "completed", crashed.Error);
        var metrics = File.ReadAllLines(Path.Combine(_tiny.RunPath("crashed"), "metrics.jsonl"));
        Assert.Single(metrics, l => l.Contains("\"kind\":\"restart\"") && l.Contains($"\"rank\":{rank},") && l.Contains($"\"step\":{step},"));
        Assert.Equal(Enumerable.Range(1, Steps).Select(i => (long)i), StepLedger(_tiny.RunPath("crashed")));
        Assert.Equal(TinyRun.FinalState(_tiny.RunPath("clean"), Steps), TinyRun.FinalState(_tiny.RunPath("crashed"), Steps));
    }

    [Fact]
    public async Task A_hung_trainer_is_named_as_the_cause_not_the_peer_that_waited_for_it()
    {
        var result = await _tiny.TrainAsync("hung", "colm.train.steps=6", "colm.cluster.collective-timeout=3s",
            "colm.train.fault-injection.hang-at-step=3", "colm.train.fault-injection.hang-rank=0", "colm.train.fault-injection.hang-for=15s");

        Assert.Equal("failed", result.State);
        Assert.StartsWith("trainer rank(s) 0 did not arrive at the collective of step 3", result.Error);
        Assert.Contains("reported by rank(s) 1", result.Error);
        Assert.Contains("\"failed\"", File.ReadAllText(Path.Combine(_tiny.RunPath("hung"), "status.json")));
    }

    /// <summary>The step numbers of the run's step records, in file order.</summary>
    internal static long[] StepLedger(string run) =>
        [.. File.ReadLines(Path.Combine(run, "metrics.jsonl"))
            .Select(l => global::System.Text.Json.JsonDocument.Parse(l).RootElement)
            .Where(e => e.GetProperty("kind").GetString() == "step")
            .Select(e => e.GetProperty("step").GetInt64())];

    [Fact]
    public async Task Diverged_replicas_stop_the_run_with_a_checksum_error()
    {
        var result = await _tiny.TrainAsync("diverged", "colm.train.steps=6",
            "colm.train.fault-injection.diverge-at-step=2", "colm.train.fault-injection.diverge-rank=1");

        Assert.Equal("failed", result.State);
        Assert.Contains("checksums differ after step 2", result.Error);
        Assert.Contains("\"failed\"", File.ReadAllText(Path.Combine(_tiny.RunPath("diverged"), "status.json")));
        Assert.False(File.Exists(Path.Combine(_tiny.RunPath("diverged"), "report.md")));
    }

    [Theory]
    [InlineData("random")]
    [InlineData("big-batch")]
    [InlineData("source-balanced-random")]
    [InlineData("big-loss")]
    [InlineData("small-loss")]
    [InlineData("grad-norm")]
    [InlineData("colm", "colm.selection.feature=exact")]
    [InlineData("colm", "colm.selection.feature=paper")]
    [InlineData("colm", "colm.selection.weights=medoid")]
    [InlineData("colm", "colm.selection.source-balancing=off")]
    [InlineData("grad-norm", "colm.selection.feature=exact")]
    public async Task Every_selection_method_trains_through_the_same_pipeline_on_exactly_its_budget(string method, string option = "colm.selection.probes=4")
    {
        string name = method + "-" + option.Split('.').Last().Replace('=', '-');
        var result = await _tiny.TrainAsync(name, "colm.train.steps=3", $"colm.selection.method={method}", option);
        Assert.Equal("completed", result.State);
        var steps = File.ReadAllLines(Path.Combine(_tiny.RunPath(name), "metrics.jsonl")).Where(l => l.Contains("\"kind\":\"step\"")).ToArray();
        Assert.Equal(3, steps.Length);
        int expected = method == "big-batch" ? 16 : 8;
        Assert.All(steps, l => Assert.Contains($"\"samples\":{expected},", l));
        // Phase timings are measured even with no telemetry exporter listening.
        Assert.All(steps, l => Assert.True(
            global::System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("phases").GetProperty("train").GetDouble() > 0));
    }
}
