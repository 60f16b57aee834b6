using System.Globalization;
using System.Text;
using System.Text.Json;
using CoLM.Cluster.Hosting;
using CoLM.Cluster.Runs;

namespace CoLM.Cli;

/// <summary>
/// `colm bench cluster`: the same run (model, data, seed, trainers, one libtorch thread per
/// trainer) as one `colm train` process and on a 3-process cluster (a coordinator node and two
/// trainer nodes on loopback), and the per-step time of each from their metrics.
/// Overhead = cluster / single - 1 of the median step.
/// <para>
/// Both layouts start cold processes (the single run is a child `colm train`, not this process),
/// so both pay the same start-up and JIT; the first <see cref="WarmupSteps"/> steps are not timed.
/// Timing on a shared machine drifts, so the layouts alternate over <c>--rounds N</c> rounds
/// (single first in odd rounds, cluster first in even ones); each round gives its own overhead
/// and the headline is their median.
/// </para>
/// </summary>
public static class ClusterOverheadBenchmark
{
    private const int WarmupSteps = 5;
    private const int DefaultRounds = 3;

    public static async Task<int> RunAsync(CommandLine cl, CancellationToken stop)
    {
        int rounds = DefaultRounds;
        if (cl.Options.TryGetValue("rounds", out var text) && (!int.TryParse(text, CultureInfo.InvariantCulture, out rounds) || rounds < 1))
            throw new UsageException($"--rounds must be a positive whole number, not '{text}'");

        string root = Path.GetFullPath(Path.Combine("runs", "bench-cluster-" + DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)));
        string[] common =
        [
            "colm.train.steps=40", .. cl.Sets, $"colm.run.root={HoconQuoted(root)}", "colm.train.threads-per-trainer=1",
            "colm.train.eval-every=0", "colm.train.checkpoint-every=0", "colm.telemetry.exporter=none", "colm.train.trainers=2",
        ];

        var single = new List<Times>();
        var cluster = new List<Times>();
        for (int round = 1; round <= rounds; round++)
        {
            bool singleFirst = round % 2 == 1;
            for (int turn = 0; turn < 2; turn++)
            {
                if ((turn == 0) == singleFirst)
                {
                    Console.WriteLine($"colm bench cluster: round {round}/{rounds}, one `colm train` process with 2 trainers ...");
                    string name = $"single-{round}";
                    await RunSingleAsync(cl.ConfigFiles, [.. common, $"colm.run.name={name}"], stop);
                    single.Add(StepTimes(Path.Combine(root, name)));
                }
                else
                {
                    Console.WriteLine($"colm bench cluster: round {round}/{rounds}, 3 node processes (coordinator + 2 trainer nodes) ...");
                    cluster.Add(StepTimes(await RunClusterAsync(cl.ConfigFiles, [.. common, $"colm.run.name=cluster-{round}"], stop)));
                }
            }
        }

        string table = Report(single, cluster);
        Console.WriteLine(table);
        if (cl.Options.TryGetValue("out", out var file)) File.WriteAllText(file, table + "\n");
        return ColmCommand.Ok;
    }

    private static async Task RunSingleAsync(IReadOnlyList<string> configFiles, IReadOnlyList<string> sets, CancellationToken stop)
    {
        var start = LaunchCommand.SelfStartInfo(["train", "--quiet"], configFiles, sets);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        using var process = System.Diagnostics.Process.Start(start) ?? throw new InvalidOperationException("could not start `colm train`");
        var output = process.StandardOutput.ReadToEndAsync(stop);
        var errors = process.StandardError.ReadToEndAsync(stop);
        try
        {
            await process.WaitForExitAsync(stop);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"the single-process run failed (exit {process.ExitCode}): {(await errors).Trim()} {(await output).Trim()}");
    }

    private static async Task<string> RunClusterAsync(IReadOnlyList<string> configFiles, string[] sets, CancellationToken stop)
    {
        RunResult result;
        await using (var nodes = LocalNodes.Start(3, configFiles, sets, echo: false))
        {
            result = await ClusterRunClient.RunAsync(new ClusterSubmission(nodes.Seed, configFiles, sets, null, 3), SilentObserver.Instance, _ => { }, stop);
        }
        if (result.State != "completed") throw new InvalidOperationException("the cluster run failed: " + result.Error);
        return result.RunDirectory;
    }

    private static string Report(List<Times> single, List<Times> cluster)
    {
        var inv = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        text.AppendLine("| round | layout | steps timed | median step ms | mean step ms | mean all-reduce ms | round overhead |");
        text.AppendLine("|---|---|---|---|---|---|---|");
        for (int i = 0; i < single.Count; i++)
        {
            double roundOverhead = cluster[i].Median / single[i].Median - 1;
            text.AppendLine(inv, $"| {i + 1} | 1 process, 2 trainers (in-process all-reduce) | {single[i].Count} | {single[i].Median * 1000:0.0} | {single[i].Mean * 1000:0.0} | {single[i].AllReduce * 1000:0.0} | |");
            text.AppendLine(inv, $"| {i + 1} | 3 processes: coordinator + 2 trainer nodes (TCP ring) | {cluster[i].Count} | {cluster[i].Median * 1000:0.0} | {cluster[i].Mean * 1000:0.0} | {cluster[i].AllReduce * 1000:0.0} | {roundOverhead:+0.0%;-0.0%} |");
        }
        // Rounds drift apart on a shared machine (other load, CPU steal), so the headline is the
        // median of the rounds' own overheads, each a pair measured back to back.
        double overhead = Median(single.Select((t, i) => cluster[i].Median / t.Median - 1));
        double a = Median(single.SelectMany(t => t.Steps)), b = Median(cluster.SelectMany(t => t.Steps));
        text.AppendLine();
        text.AppendLine(inv, $"all rounds pooled: median step {a * 1000:0.0} ms (1 process) vs {b * 1000:0.0} ms (3 processes), {b / a - 1:+0.0%;-0.0%}");
        text.Append(inv, $"per-step overhead of the cluster (median of the {single.Count} rounds' overheads): {overhead:+0.0%;-0.0%} (target <= +15%: {(overhead <= 0.15 ? "met" : "not met")})");
        return text.ToString();
    }

    private sealed record Times(IReadOnlyList<double> Steps, double AllReduce)
    {
        public int Count => Steps.Count;
        public double Median => ClusterOverheadBenchmark.Median(Steps);
        public double Mean => Steps.Average();
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private static string HoconQuoted(string path) => CoLM.Cluster.Configuration.HoconSources.Quote(path);

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
        return new Times([.. steps.Select(s => s.Step)], steps.Average(s => s.AllReduce));
    }
}
