using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using CoLM.Cluster.Hosting;
using CoLM.Cluster.Runs;

namespace CoLM.Cli;

/// <summary>
/// `colm bench chaos`: a long run on N local node processes that all have both roles, with a
/// fault injected after each recovery: SIGKILL of a trainer node, SIGSTOP of one, SIGKILL of the
/// coordinator's node while a checkpoint is being written, and two nodes killed 2 s apart; every
/// lost node is started again on its port and must rejoin. For each fault it reports, from
/// outside (wall clock, as a user sees the run's metrics.jsonl grow): when the loss was recorded,
/// when the next step was committed, and when the restarted node was admitted and how long the
/// others stalled then. At the end the client stops the run, and the ledger (one `step` row per
/// step, none missing) and every checkpoint (its manifest) are checked.
/// </summary>
public static class ChaosBenchmark
{
    private const int SigStop = 19, SigCont = 18;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(180);

    public static async Task<int> RunAsync(CommandLine cl, CancellationToken stop)
    {
        try
        {
            return await RunChaosAsync(cl, stop);
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException)
        {
            // The run did not do what a fault should have made it do: that is the benchmark's finding.
            Console.Error.WriteLine($"colm bench chaos: {e.Message}");
            return ColmCommand.RunFailed;
        }
    }

    private static async Task<int> RunChaosAsync(CommandLine cl, CancellationToken stop)
    {
        int n = 4;
        if (cl.Options.TryGetValue("nodes", out var text) && (!int.TryParse(text, CultureInfo.InvariantCulture, out n) || n < 4))
            throw new UsageException($"--nodes must be 4 or more (two faults at once must leave the oldest coordinator node a side), not '{text}'");
        string root = Path.GetFullPath(Path.Combine("runs", "bench-chaos-" + DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)));
        string[] sets =
        [
            "colm.train.steps=1000000", "colm.train.checkpoint-every=20", "colm.train.eval-every=0", "colm.train.threads-per-trainer=1",
            // Loopback timings (a crash is the only fault here, never a partition): the resolver decides
            // after 5 s of stable membership and the coordinator singleton starts 1 s after the lost
            // node's removal. Production keeps 20 s and a removal margin equal to it (hocon/akka.conf).
            "colm.telemetry.exporter=none", "akka.cluster.split-brain-resolver.stable-after=5s", "akka.cluster.down-removal-margin=1s", .. cl.Sets,
            $"colm.run.root={CoLM.Cluster.Configuration.HoconSources.Quote(root)}", "colm.run.name=chaos",
        ];

        Console.WriteLine($"colm bench chaos: {n} node processes, each with the coordinator and trainer roles; run in {root}/chaos");
        // Node i's HTTP host on the configured port + i (a restarted node gets its own port back).
        int httpPort = Cluster.Configuration.SettingsReader.Read(RunPlan.Layer(null, cl.ConfigFiles, sets)).Telemetry.HttpPort;
        await using var nodes = LocalNodes.Start(n, cl.ConfigFiles, sets, echo: false, httpPort, allRoles: true);
        using var end = CancellationTokenSource.CreateLinkedTokenSource(stop);
        string? runPath = null;
        var run = ClusterRunClient.RunAsync(new ClusterSubmission(nodes.Seed, cl.ConfigFiles, sets, null, n), SilentObserver.Instance,
            s => runPath = s.Plan.Run.Path, end.Token);
        var started = Stopwatch.StartNew();
        while (runPath is null || !File.Exists(Path.Combine(runPath, "metrics.jsonl")))
        {
            if (run.IsCompleted) throw new InvalidOperationException("the run ended before its first step: " + (await run).Error);
            if (started.Elapsed > Patience) throw new TimeoutException($"no step within {Patience.TotalSeconds:0}s");
            await Task.Delay(100, stop);
        }

        var watch = new MetricsWatch(Path.Combine(runPath, "metrics.jsonl"));
        var results = new List<FaultResult>();
        await watch.StepsPast(10, run, stop);

        results.Add(await Inject("SIGKILL of a trainer node", [n - 1], () => nodes.Kill(n - 1), watch, run, stop));
        results[^1] = await Rejoin(results[^1], nodes, [n - 1], via: 0, watch, run, stop);

        results.Add(await Inject("SIGSTOP of a trainer node (alive, silent)", [n - 2], () => nodes.Signal(n - 2, SigStop), watch, run, stop));
        // Thawed after 12 s: downed by then (unreachable ~4 s, stable-after 5 s), it finds itself
        // removed and exits, and is started again; if not yet downed it is reachable again and its
        // trainer is admitted again without a restart.
        int mark = watch.Count;
        await Task.Delay(TimeSpan.FromSeconds(12), stop);
        nodes.Signal(n - 2, SigCont);
        results[^1] = await UntilExitedOrReadmitted(nodes, n - 2, mark, stop, watch, run) is { } readmitted
            ? results[^1] with { RejoinSeconds = readmitted, StallSeconds = double.NaN, Fault = results[^1].Fault + "; thawed before it was downed: admitted again" }
            : await Rejoin(results[^1], nodes, [n - 2], via: 0, watch, run, stop);

        // The coordinator's node (the oldest) dies while rank 0 writes a checkpoint.
        await watch.StepsPast(3, run, stop);
        await UntilCheckpointInProgress(runPath, run, stop);
        results.Add(await Inject("SIGKILL of the coordinator's node during a checkpoint save", [0], () => nodes.Kill(0), watch, run, stop));
        results[^1] = await Rejoin(results[^1], nodes, [0], via: 1, watch, run, stop);

        results.Add(await Inject("two trainer nodes SIGKILLed 2 s apart", [n - 1, n - 2], () =>
        {
            nodes.Kill(n - 1);
            Thread.Sleep(2000);
            nodes.Kill(n - 2);
        }, watch, run, stop));
        results[^1] = await Rejoin(results[^1], nodes, [n - 1, n - 2], via: 1, watch, run, stop);

        await watch.StepsPast(5, run, stop);
        end.Cancel(); // the client asks for a clean stop: a checkpoint, then the end
        var result = await run;
        watch.Dispose();

        var (report, intact) = Report(results, watch, result, runPath);
        Console.WriteLine(report);
        if (cl.Options.TryGetValue("out", out var file)) File.WriteAllText(file, report + "\n");
        // Times are reported, not judged (this machine is noisy); what may not happen is judged.
        if (intact) return ColmCommand.Ok;
        Console.Error.WriteLine("colm bench chaos: the run did not come through intact (above: its end, the ledger and the checkpoints)");
        return ColmCommand.RunFailed;
    }

    private sealed record FaultResult(string Fault, double DetectedSeconds, double NextStepSeconds, double? RejoinSeconds = null,
        double? StallSeconds = null);

    /// <summary>Injects a fault and waits for its `membership` row (lost) and the next committed step.</summary>
    private static async Task<FaultResult> Inject(string fault, int[] victims, Action inject, MetricsWatch watch, Task<RunResult> run, CancellationToken stop)
    {
        await watch.StepsPast(3, run, stop);
        Console.WriteLine($"colm bench chaos: {fault} (node(s) {string.Join(", ", victims)}) ...");
        int mark = watch.Count;
        var t0 = Stopwatch.GetTimestamp();
        inject();
        var lost = await watch.WaitFor(mark, r => Kind(r) == "membership" && r.GetProperty("change").GetString() == "lost", run, stop);
        var next = await watch.WaitFor(lost.Index + 1, r => Kind(r) == "step", run, stop);
        return new FaultResult(fault, Seconds(t0, lost.At), Seconds(t0, next.At));
    }

    /// <summary>Starts the lost node(s) again and waits until the run admits them; the stall is the longest step interval around the admission.</summary>
    private static async Task<FaultResult> Rejoin(FaultResult fault, LocalNodes nodes, int[] restart, int via, MetricsWatch watch, Task<RunResult> run,
        CancellationToken stop)
    {
        int mark = watch.Count;
        var t0 = Stopwatch.GetTimestamp();
        foreach (int node in restart) nodes.Restart(node, via);
        (int Index, long At) joined;
        int restarts = 0;
        using var supervisor = new CancellationTokenSource();
        // As a supervisor would: a node that gives up joining (colm.cluster.join-timeout) is started again.
        var supervise = Task.Run(async () =>
        {
            while (!supervisor.IsCancellationRequested)
            {
                foreach (int node in restart)
                {
                    if (!nodes.HasExited(node)) continue;
                    restarts++;
                    nodes.Restart(node, via);
                }
                await Task.Delay(500, supervisor.Token).ContinueWith(_ => { });
            }
        });
        try
        {
            joined = await watch.WaitFor(mark, r => Kind(r) == "membership" && r.GetProperty("change").GetString() == "joined", run, stop);
            for (int more = 1; more < restart.Length; more++)
                joined = await watch.WaitFor(joined.Index + 1, r => Kind(r) == "membership" && r.GetProperty("change").GetString() == "joined", run, stop);
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}: restarted node(s) {string.Join(", ", restart)} were not admitted; their last output:\n" +
                                       string.Join("\n", restart.Select(node => $"[node-{node}] " + nodes.Tail(node).Replace("\n", $"\n[node-{node}] "))));
        }
        finally
        {
            supervisor.Cancel();
            await supervise;
        }
        var after = await watch.WaitFor(joined.Index + 1, r => Kind(r) == "step", run, stop);
        var before = watch.LastBefore(joined.Index, r => Kind(r) == "step");
        double stall = before is { } b ? Seconds(b.At, after.At) : double.NaN;
        return fault with
        {
            RejoinSeconds = Seconds(t0, joined.At),
            StallSeconds = stall,
            Fault = restarts > 0 ? $"{fault.Fault} (restarted node gave up joining; started again {restarts}x)" : fault.Fault,
        };
    }

    /// <summary>Null once the thawed node has exited (it was downed); the seconds since the thaw when its trainer was admitted again instead.</summary>
    private static async Task<double?> UntilExitedOrReadmitted(LocalNodes nodes, int node, int mark, CancellationToken stop, MetricsWatch watch,
        Task<RunResult> run)
    {
        var thawed = Stopwatch.GetTimestamp();
        while (!nodes.HasExited(node))
        {
            if (watch.Find(mark, r => Kind(r) == "membership" && r.GetProperty("change").GetString() == "joined") is { } joined)
                return Seconds(thawed, joined.At);
            if (run.IsCompleted) throw new InvalidOperationException("the run ended: " + (await run).Error);
            if (Stopwatch.GetElapsedTime(thawed) > TimeSpan.FromSeconds(90))
                throw new TimeoutException($"the thawed node {node} neither exited nor was admitted again within 90 s; its last output:\n{nodes.Tail(node)}");
            await Task.Delay(200, stop);
        }
        return null;
    }

    private static async Task UntilCheckpointInProgress(string runPath, Task<RunResult> run, CancellationToken stop)
    {
        var checkpoints = Path.Combine(runPath, "checkpoints");
        var deadline = Stopwatch.StartNew();
        while (!Directory.Exists(checkpoints) || !Directory.EnumerateDirectories(checkpoints, ".step-*.partial").Any())
        {
            if (run.IsCompleted) throw new InvalidOperationException("the run ended: " + (await run).Error);
            if (deadline.Elapsed > Patience) throw new TimeoutException("no checkpoint was started");
            await Task.Delay(5, stop);
        }
    }

    private static string Kind(JsonElement row) => row.GetProperty("kind").GetString() ?? "";

    private static double Seconds(long from, long to) => Stopwatch.GetElapsedTime(from, to).TotalSeconds;

    /// <summary>The report, and whether the run came through intact: stopped as asked, every step committed once, every checkpoint verified.</summary>
    private static (string Report, bool Intact) Report(List<FaultResult> results, MetricsWatch watch, RunResult result, string runPath)
    {
        var inv = CultureInfo.InvariantCulture;
        var ledger = watch.Steps();
        long last = ledger.Count == 0 ? 0 : ledger[^1];
        int duplicates = ledger.Count - ledger.Distinct().Count();
        int missing = (int)(last - ledger.Distinct().Count());
        var checkpoints = CheckpointStore.All(RunDirectory.OpenExisting(runPath)).ToArray();
        var bad = checkpoints.Select(c => (c, CheckpointVerifier.Verify(c).Problem)).Where(x => x.Problem is not null).ToArray();
        double median = watch.MedianStepInterval();
        double wall = watch.WallSecondsOfSteps();

        var t = new StringBuilder();
        t.AppendLine("| fault | loss recorded after (s) | next step after (s) | node(s) admitted after restart (s) | longest step interval at admission (s) |");
        t.AppendLine("|---|---|---|---|---|");
        foreach (var r in results)
            t.AppendLine(inv, $"| {r.Fault} | {r.DetectedSeconds:0.0} | {r.NextStepSeconds:0.0} | {r.RejoinSeconds:0.0} | {r.StallSeconds:0.00} |");
        t.AppendLine();
        t.AppendLine(inv, $"run {result.State} at step {result.Step}{(result.Error is { } e ? $" ({e})" : "")}; {ledger.Count} step rows, {missing} step(s) missing, {duplicates} committed twice");
        t.AppendLine(inv, $"checkpoints: {checkpoints.Length} on disk, {bad.Length} that do not verify{string.Concat(bad.Select(x => $"; {x.c.Directory}: {x.Problem}"))}");
        t.AppendLine(inv, $"median step interval {median * 1000:0} ms; useful work: {last} steps x median interval / {wall:0} s of run = {last * median / Math.Max(1e-9, wall):0%}");
        t.Append(inv, $"targets: 0 committed steps lost ({(missing == 0 && duplicates == 0 ? "met" : "NOT met")}); next step within 10 s of a trainer node's loss " +
                      $"({Met(results.Where(r => !r.Fault.Contains("coordinator")).All(r => r.NextStepSeconds <= 10))}) and 15 s of the coordinator's " +
                      $"({Met(results.Where(r => r.Fault.Contains("coordinator")).All(r => r.NextStepSeconds <= 15))}); a rejoin stalls the others at most one step " +
                      $"({Met(results.All(r => r.StallSeconds is not { } stall || double.IsNaN(stall) || stall <= 2 * median))}, read as: the interval at admission at most twice the median)");
        return (t.ToString(), result.State == "stopped" && missing == 0 && duplicates == 0 && bad.Length == 0);
    }

    private static string Met(bool met) => met ? "met" : "NOT met";

    /// <summary>Follows a growing metrics.jsonl, noting when each row appeared (wall clock, from outside the run).</summary>
    private sealed class MetricsWatch : IDisposable
    {
        private readonly List<(JsonElement Row, long At)> _rows = [];
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _reader;

        public MetricsWatch(string file) => _reader = Task.Run(() => Follow(file, _stop.Token));

        public int Count
        {
            get { lock (_rows) return _rows.Count; }
        }

        private async Task Follow(string file, CancellationToken stop)
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            var partial = new StringBuilder();
            while (!stop.IsCancellationRequested)
            {
                var chunk = await reader.ReadToEndAsync(stop);
                long at = Stopwatch.GetTimestamp();
                partial.Append(chunk);
                var text = partial.ToString();
                int lastNewline = text.LastIndexOf('\n');
                if (lastNewline >= 0)
                {
                    foreach (var line in text[..lastNewline].Split('\n', StringSplitOptions.RemoveEmptyEntries))
                    {
                        using var doc = JsonDocument.Parse(line);
                        lock (_rows) _rows.Add((doc.RootElement.Clone(), at));
                    }
                    partial.Clear().Append(text[(lastNewline + 1)..]);
                }
                await Task.Delay(20, stop).ContinueWith(_ => { });
            }
        }

        public async Task<(int Index, long At)> WaitFor(int from, Func<JsonElement, bool> match, Task<RunResult> run, CancellationToken stop)
        {
            var deadline = Stopwatch.StartNew();
            while (true)
            {
                lock (_rows)
                {
                    for (int i = from; i < _rows.Count; i++)
                        if (match(_rows[i].Row)) return (i, _rows[i].At);
                }
                if (run.IsCompleted) throw new InvalidOperationException("the run ended: " + (await run).Error);
                if (deadline.Elapsed > Patience) throw new TimeoutException($"waited {Patience.TotalSeconds:0}s in vain for the run to record what the fault should cause");
                await Task.Delay(20, stop);
            }
        }

        public (int Index, long At)? Find(int from, Func<JsonElement, bool> match)
        {
            lock (_rows)
            {
                for (int i = from; i < _rows.Count; i++)
                    if (match(_rows[i].Row)) return (i, _rows[i].At);
            }
            return null;
        }

        public async Task StepsPast(int steps, Task<RunResult> run, CancellationToken stop)
        {
            int mark = Count;
            for (int i = 0; i < steps; i++) mark = (await WaitFor(mark, r => Kind(r) == "step", run, stop)).Index + 1;
        }

        public (int Index, long At)? LastBefore(int index, Func<JsonElement, bool> match)
        {
            lock (_rows)
            {
                for (int i = Math.Min(index, _rows.Count) - 1; i >= 0; i--)
                    if (match(_rows[i].Row)) return (i, _rows[i].At);
            }
            return null;
        }

        private long[] StepArrivals()
        {
            lock (_rows) return [.. _rows.Where(r => Kind(r.Row) == "step").Select(r => r.At)];
        }

        /// <summary>
        /// The median time between consecutive steps on the coordinator's run clock (elapsedSeconds;
        /// a coordinator that takes over starts its own clock, so negative differences are skipped).
        /// </summary>
        public double MedianStepInterval()
        {
            double[] elapsed;
            lock (_rows) elapsed = [.. _rows.Where(r => Kind(r.Row) == "step").Select(r => r.Row.GetProperty("elapsedSeconds").GetDouble())];
            var gaps = elapsed.Zip(elapsed.Skip(1), (a, b) => b - a).Where(g => g > 0).Order().ToArray();
            return gaps.Length == 0 ? double.NaN : gaps[gaps.Length / 2];
        }

        public double WallSecondsOfSteps()
        {
            var at = StepArrivals();
            return at.Length < 2 ? 0 : Seconds(at[0], at[^1]);
        }

        public List<long> Steps()
        {
            lock (_rows) return [.. _rows.Where(r => Kind(r.Row) == "step").Select(r => r.Row.GetProperty("step").GetInt64())];
        }

        public void Dispose()
        {
            _stop.Cancel();
            try
            {
                _reader.Wait(TimeSpan.FromSeconds(5));
            }
            catch (AggregateException)
            {
            }
            _stop.Dispose();
        }
    }
}
