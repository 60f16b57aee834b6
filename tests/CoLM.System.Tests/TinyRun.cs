using CoLM.Cluster.Hosting;
using CoLM.Cluster.Runs;

namespace CoLM.System.Tests;

/// <summary>A tiny but real configuration: the whole stack in seconds on 2 cores.</summary>
public sealed class TinyRun : IDisposable
{
    public TinyRun() => Root = Directory.CreateTempSubdirectory("colm-test-").FullName;

    public string Root { get; }

    public static readonly string[] TinySets =
    [
        "colm.model.base=random", "colm.model.dim=32", "colm.model.layers=2", "colm.model.heads=2", "colm.model.hidden-dim=64",
        "colm.model.lora.rank=4", "colm.model.lora.alpha=8",
        "colm.data.synthetic.train-examples=400", "colm.data.heldout-per-source=4",
        "colm.selection.pool=16", "colm.selection.budget=8", "colm.selection.probes=4",
        "colm.train.learning-rate=0.01", "colm.train.eval-every=0", "colm.train.checkpoint-every=0",
        "colm.train.checksum-every=1", "colm.telemetry.exporter=none", "colm.telemetry.http=off",
    ];

    public string[] Sets(string name, params string[] extra) =>
        [.. TinySets, $"colm.run.root={Root}", $"colm.run.name={name}", .. extra];

    public string RunPath(string name) => Path.Combine(Root, name);

    /// <summary>Settings as `colm` command-line arguments: --set KEY=VALUE for each.</summary>
    public static string[] SetArgs(IEnumerable<string> sets) => [.. sets.SelectMany(s => new[] { "--set", s })];

    public async Task<RunResult> TrainAsync(string name, params string[] extra)
    {
        var plan = RunPlan.Prepare([], Sets(name, extra), null);
        return await LocalRun.RunAsync(plan, SilentObserver.Instance, CancellationToken.None);
    }

    public static async Task<RunResult> ResumeAsync(string runDir, params string[] sets)
    {
        var plan = RunPlan.Prepare([], sets, runDir);
        return await LocalRun.RunAsync(plan, SilentObserver.Instance, CancellationToken.None);
    }

    public static byte[] FinalState(string runDir, long step) =>
        File.ReadAllBytes(Path.Combine(runDir, "checkpoints", $"step-{step:D6}", "trainer-state.bin"));

    /// <summary>Waits (up to 90 s) until the run's metrics hold <paramref name="count"/> records of this kind; fails if the run ends first.</summary>
    public static async Task UntilMetricsShow(string run, string kind, Task<ColmProcess.Outcome> submit, int count = 1)
    {
        var metrics = Path.Combine(run, "metrics.jsonl");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (!File.Exists(metrics) || File.ReadLines(metrics).Count(l => l.Contains($"\"kind\":\"{kind}\"")) < count)
        {
            if (submit.IsCompleted) Assert.Fail($"the run ended before its first {kind}, so before the fault was injected: " + (await submit).Stderr);
            Assert.True(DateTime.UtcNow < deadline, $"no {kind} within 90 s");
            await Task.Delay(100);
        }
    }

    /// <summary>Waits until <paramref name="more"/> steps past the last one recorded now are in the metrics.</summary>
    public static async Task UntilMoreSteps(string run, int more, Task<ColmProcess.Outcome> submit)
    {
        long target = RunDirectory.OpenExisting(run).LastRecordedStep() + more;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (RunDirectory.OpenExisting(run).LastRecordedStep() < target)
        {
            if (submit.IsCompleted) Assert.Fail($"the run ended before step {target}: " + (await submit).Stderr);
            Assert.True(DateTime.UtcNow < deadline, $"step {target} not reached within 90 s");
            await Task.Delay(100);
        }
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}
