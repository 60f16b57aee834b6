using System.Text.Json;
using CoLM.Cluster.Hosting;
using CoLM.Cluster.Runs;

namespace CoLM.Cli;

/// <summary>
/// `colm bench cluster`: the same run (model, data, seed, trainers, one libtorch thread per
/// trainer) in one process and on a 3-process cluster (a coordinator node and two trainer nodes
/// on loopback), and the per-step time of each from their metrics. Overhead = cluster / single - 1.
/// </summary>
public static class ClusterOverheadBenchmark
{
    private const int WarmupSteps = 3;

    public static async Task<int> RunAsync(CommandLine cl, CancellationToken stop)
    {
        string root = Path.GetFullPath(Path.Combine("runs", "bench-cluster-" + DateTime.UtcNow.ToString("yyyyMMdd-HHmmss")));
        string[] common =
        [
            "colm.train.steps=40", .. cl.Sets, $"colm.run.root={root}", "colm.train.threads-per-trainer=1",
            "colm.train.eval-every=0", "colm.train.checkpoint-every=0", "colm.telemetry.exporter=none",
        ];

        Console.WriteLine("colm bench cluster: single process, 2 trainers ...");
        var plan = RunPlan.Prepare(cl.ConfigFiles, [.. common, "colm.run.name=single", "colm.train.trainers=2"], null);
        var single = await LocalRun.RunAsync(plan, SilentObserver.Instance, stop);
        if (single.State != "completed") throw new InvalidOperationException("the single-process run failed: " + single.Error);

        Console.WriteLine("colm bench cluster: 3 node processes (coordinator + 2 trainer nodes) ...");
        RunResult cluster;
        await using (var nodes = LocalNodes.Start(3, cl.ConfigFiles, common, echo: false))
        {
            cluster = await ClusterRunClient.RunAsync(new ClusterSubmission(nodes.Seed, cl.ConfigFiles, [.. common, "colm.run.name=cluster"], null, 3),
                SilentObserver.Instance, _ => { }, stop);
        }
        if (cluster.State != "completed") throw new InvalidOperationException("the cluster run failed: " + cluster.Error);

        var a = StepTimes(single.RunDirectory);
        var b = StepTimes(cluster.RunDirectory);
        double overhead = b.Median / a.Median - 1;
        string table = $"""
            | layout | steps timed | median step ms | mean step ms | mean all-reduce ms |
            |---|---|---|---|---|
            | 1 process, 2 trainers (in-process all-reduce) | {a.Count} | {a.Median * 1000:0.0} | {a.Mean * 1000:0.0} | {a.AllReduce * 1000:0.0} |
            | 3 processes: coordinator + 2 trainer nodes (TCP ring) | {b.Count} | {b.Median * 1000:0.0} | {b.Mean * 1000:0.0} | {b.AllReduce * 1000:0.0} |

            per-step overhead of the cluster (median): {overhead:+0.0%;-0.0%} (target <= +15%: {(overhead <= 0.15 ? "met" : "not met")})
            """;
        Console.WriteLine(table);
        if (cl.Options.TryGetValue("out", out var file)) File.WriteAllText(file, table + "\n");
        return ColmCommand.Ok;
    }

    private sealed record Times(int Count, double Median, double Mean, double AllReduce);

    /// <summary>Step and all-reduce seconds from metrics.jsonl, after the warm-up steps.</summary>
    private static Times StepTimes(string run)
    {
        var steps = new List<(double Step, double AllReduce)>();
        foreach (var line in File.ReadLines(Path.Combine(run, "metrics.jsonl")))
        {
            using var doc = JsonDocument.Parse(line);
            var r = doc.RootElement;
            if (r.GetProperty("kind").GetString() != "step" || r.GetProperty("step").GetInt64() <= WarmupSteps) continue;
            double allReduce = r.GetProperty("phases").TryGetProperty("allreduce", out var ar) ? ar.GetDouble() : 0;
            steps.Add((r.GetProperty("stepSeconds").GetDouble(), allReduce));
        }
        if (steps.Count == 0) throw new InvalidOperationException($"{run}: no steps after the {WarmupSteps} warm-up steps; raise colm.train.steps");
        var sorted = steps.Select(s => s.Step).Order().ToArray();
        return new Times(steps.Count, sorted[sorted.Length / 2], steps.Average(s => s.Step), steps.Average(s => s.AllReduce));
    }
}
