namespace CoLM.System.Tests;

/// <summary>`colm bench cluster` end to end on the tiny model: it runs both layouts for real and reports them.</summary>
public sealed class ClusterBenchmarkTests : IDisposable
{
    private readonly TinyRun _tiny = new();

    public void Dispose() => _tiny.Dispose();

    [Fact]
    public async Task One_round_times_a_train_process_and_a_three_node_cluster_and_writes_the_table()
    {
        string table = Path.Combine(_tiny.Root, "cluster.md");
        var args = new List<string> { "bench", "cluster", "--rounds", "1", "--out", table };
        foreach (var s in TinyRun.TinySets) args.AddRange(["--set", s]);
        args.AddRange(["--set", "colm.train.steps=8"]);

        var o = await ColmProcess.RunAsync(_tiny.Root, [.. args]);

        Assert.True(o.ExitCode == 0, o.Stdout + o.Stderr);
        var rows = File.ReadAllLines(table);
        Assert.Contains(rows, r => r.StartsWith("| 1 | 1 process, 2 trainers", StringComparison.Ordinal) && r.Contains("| 3 |", StringComparison.Ordinal));
        Assert.Contains(rows, r => r.StartsWith("| 1 | 3 processes", StringComparison.Ordinal) && r.Contains("| 3 |", StringComparison.Ordinal));
        Assert.Contains(rows, r => r.StartsWith("per-step overhead of the cluster", StringComparison.Ordinal));

        // Both layouts trained for real: each run folder has the 8 steps' metrics.
        var runs = Directory.GetDirectories(Path.Combine(_tiny.Root, "runs"), "bench-cluster-*").Single();
        foreach (var name in new[] { "single-1", "cluster-1" })
            Assert.Equal(8, File.ReadLines(Path.Combine(runs, name, "metrics.jsonl")).Count(l => l.Contains("\"kind\":\"step\"", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_bad_round_count_is_named()
    {
        var o = await ColmProcess.RunAsync(_tiny.Root, "bench", "cluster", "--rounds", "0");

        Assert.NotEqual(0, o.ExitCode);
        Assert.Contains("--rounds must be a positive whole number", o.Stderr + o.Stdout, StringComparison.Ordinal);
    }
}
