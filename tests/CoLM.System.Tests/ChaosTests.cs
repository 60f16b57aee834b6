namespace CoLM.System.Tests;

/// <summary>
/// `colm bench chaos` on the tiny model, as CI runs it: four node processes with both roles, a
/// SIGKILLed trainer node, a SIGSTOPped one, the coordinator's node SIGKILLed during a checkpoint
/// save, two nodes killed 2 s apart, each lost node restarted to rejoin. The bench fails unless the
/// run stops as asked with every step committed exactly once and every checkpoint verified;
/// replicas are compared every step (checksum-every = 1), so a replica that differs fails the run.
/// </summary>
public sealed class ChaosTests : IDisposable
{
    private readonly TinyRun _tiny = new();

    public void Dispose() => _tiny.Dispose();

    [Fact]
    public async Task Four_faults_on_four_nodes_lose_no_step_and_every_lost_node_rejoins()
    {
        var report = Path.Combine(_tiny.Root, "chaos.md");
        // Every node with its HTTP host, as a user's would be: a node started again must get its own port back.
        var outcome = await ColmProcess.RunAsync(_tiny.Root, ["bench", "chaos", "--out", report,
            .. TinyRun.SetArgs([.. TinyRun.TinySets, "colm.train.checkpoint-every=20", "colm.train.checksum-every=1",
                "colm.telemetry.http=on", $"colm.telemetry.http-port={LocalMachine.FreePort()}"])])
            .WaitAsync(TimeSpan.FromMinutes(12));

        Assert.True(outcome.ExitCode == 0, $"exit {outcome.ExitCode}\n{outcome.Stdout}\n{outcome.Stderr}");
        var text = File.ReadAllText(report);
        Assert.Contains("0 step(s) missing, 0 committed twice", text);
        Assert.Contains(", 0 that do not verify", text);
        var run = Assert.Single(Directory.GetDirectories(Path.Combine(_tiny.Root, "runs"), "bench-chaos-*"));
        var rows = File.ReadAllLines(Path.Combine(run, "chaos", "metrics.jsonl"));
        // Five nodes lost in four faults (the thawed one may be admitted again without a restart), each admitted again.
        Assert.True(rows.Count(r => r.Contains("\"kind\":\"membership\"") && r.Contains("\"change\":\"lost\"")) >= 5, text);
        Assert.True(rows.Count(r => r.Contains("\"kind\":\"membership\"") && r.Contains("\"change\":\"joined\"")) >= 5, text);
        Assert.Contains(rows, r => r.Contains("\"kind\":\"recovery\""));
        // The coordinator's node was killed: another coordinator took the run over and claimed a newer epoch.
        var claim = File.ReadAllText(Path.Combine(run, "chaos", "coordinator-epoch")).Split(' ');
        Assert.True(int.Parse(claim[1], global::System.Globalization.CultureInfo.InvariantCulture) >= 1, string.Join(' ', claim));
    }
}
