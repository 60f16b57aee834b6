using System.Diagnostics;
using System.Globalization;
using CoLM.Cluster.Configuration;
using CoLM.Cluster.Coordination;
using CoLM.Cluster.Hosting;
using CoLM.Collectives;
using CoLM.Data;
using CoLM.Selection;
using CoLM.Telemetry;
using CoLM.Training;
using CoLM.Training.Settings;

namespace CoLM.Cli;

/// <summary>
/// `colm bench step`: one CoLM step (pool L, coreset b = L/2) against a big-batch step on L, on
/// the configured model, through the code a run uses: the coordinator's <see cref="StepPlanner"/>
/// (sketch shares, probe and selection seeds, small sources, weights, the round-robin deal) and
/// the trainers' <see cref="TrainerReplica"/> on their own threads; the actor messaging around
/// them is left out (`colm bench cluster` measures that). Both variants are measured in this one
/// process, alternately, and reported as medians.
/// </summary>
public static class StepBenchmark
{
    private const int Warmup = 2, Repeats = 7;

    public static int Run(IReadOnlyList<string> configFiles, IReadOnlyList<string> sets)
    {
        var settings = SettingsReader.Read(RunPlan.Layer(null, configFiles, sets));
        int pool = settings.Selection.Pool, budget = Math.Max(1, pool / 2);
        settings = settings with { Selection = settings.Selection with { Method = SelectionMethod.Colm, Budget = budget } };
        var data = RunPlan.LoadData(settings);
        int world = settings.Train.Trainers;
        TorchSharp.torch.set_num_threads(settings.Train.ThreadsFor(Environment.ProcessorCount));

        using var group = new InProcessCollectiveGroup(world, settings.Cluster.CollectiveTimeout);
        using var replicas = new ReplicaSet(world, r => new TrainerReplica(settings, data, r, group.ForRank(r), FaultInjector.None));
        // The coordinator's own step plan: the same sketch shares, probe seed, selection seed and deal as a run.
        var planner = new StepPlanner(settings, data, TrainerReplica.SketchWidth(settings));
        var selector = planner.NewSelector();
        var sampler = new PoolSampler(data.Train.Count, settings.Run.Seed);

        // CoLM steps are numbered 1, 2, ... as in a run, each on the next pool a run would draw;
        // the big-batch step after each trains on the same pool. Step 1 is therefore exactly a
        // run's step 1 (same replicas, pool and seeds); its coreset digest says so.
        var colm = new List<Sample>();
        var big = new List<Sample>();
        string? firstDigest = null;
        for (int step = 1; step <= Warmup + Repeats; step++)
        {
            var ids = sampler.Next(pool);
            var (a, selection) = ColmStep(replicas, planner, selector, ids, step);
            firstDigest ??= StepPlanner.Digest(selection);
            var b = BigBatchStep(replicas, ids, step);
            if (step > Warmup)
            {
                colm.Add(a);
                big.Add(b);
            }
        }

        Print(settings, pool, budget, world, colm, big);
        Console.WriteLine($"step 1 coreset digest: {firstDigest} (a run with these settings and seed selects the same coreset at step 1; metrics.jsonl's coresetDigest)");
        return 0;
    }

    private sealed record Sample(double Sketch, double Select, double Train, double AllReduce, double Total, long PeakAboveBaseline);

    private static (Sample, CoresetSelection) ColmStep(ReplicaSet replicas, StepPlanner planner, CoresetSelector selector, int[] pool, long step)
    {
        var (baseline, reset) = BeginMemoryWindow();
        var total = Stopwatch.StartNew();
        var shares = planner.SketchShares(pool, replicas.Count)!;
        var (kind, probeSeed, probes) = planner.SketchRequest(step);
        var clock = Stopwatch.StartNew();
        var sketches = replicas.Parallel(r => r.Sketch(shares[r.Rank], kind, probeSeed, probes));
        double sketch = clock.Elapsed.TotalSeconds;

        clock.Restart();
        var selection = planner.Select(selector, pool,
            Enumerable.Range(0, replicas.Count).Select(r => new StepPlanner.ShareSketch(shares[r], sketches[r].Losses, sketches[r].Coefficients, sketches[r].Features)), step);
        double select = clock.Elapsed.TotalSeconds;

        var (trainTime, allReduce) = Train(replicas, planner.Deal(selection, replicas.Count), step);
        return (new Sample(sketch, select, trainTime, allReduce, total.Elapsed.TotalSeconds, PeakAbove(baseline, reset)), selection);
    }

    private static Sample BigBatchStep(ReplicaSet replicas, int[] pool, long step)
    {
        var (baseline, reset) = BeginMemoryWindow();
        var total = Stopwatch.StartNew();
        var shares = WorkShares.Split(pool, replicas.Count).Select(ids => new StepPlanner.TrainShare(ids, [.. ids.Select(_ => 1f)], pool.Length)).ToArray();
        var (trainTime, allReduce) = Train(replicas, shares, step);
        return new Sample(0, 0, trainTime, allReduce, total.Elapsed.TotalSeconds, PeakAbove(baseline, reset));
    }

    private static (double Train, double AllReduce) Train(ReplicaSet replicas, StepPlanner.TrainShare[] shares, long step)
    {
        var clock = Stopwatch.StartNew();
        var outcomes = replicas.Parallel(r => r.Train(step, shares[r.Rank].Ids, shares[r.Rank].Weights, shares[r.Rank].GlobalWeight, false));
        double wall = clock.Elapsed.TotalSeconds;
        double allReduce = outcomes.Max(o => o.AllReduce.TotalSeconds);
        return (wall - allReduce, allReduce);
    }

    /// <summary>The replicas of the benchmark, each living on its own thread as in a run.</summary>
    private sealed class ReplicaSet : IDisposable
    {
        private readonly ReplicaThread[] _threads;

        public ReplicaSet(int world, Func<int, TrainerReplica> create)
        {
            _threads = Enumerable.Range(0, world).Select(r => new ReplicaThread($"trainer-{r}")).ToArray();
            Items = Enumerable.Range(0, world).Select(r => _threads[r].Run(() => create(r)).Result).ToArray();
        }

        public TrainerReplica[] Items { get; }

        public int Count => Items.Length;

        public T[] Parallel<T>(Func<TrainerReplica, T> work)
        {
            var tasks = Items.Select(r => _threads[r.Rank].Run(() => work(r))).ToArray();
            Task.WaitAll(tasks);
            return tasks.Select(t => t.Result).ToArray();
        }

        public void Dispose()
        {
            Parallel(r =>
            {
                r.Dispose();
                return 0;
            });
            foreach (var t in _threads) t.Dispose();
        }
    }

    private static (long Baseline, bool Reset) BeginMemoryWindow()
    {
        GC.Collect();
        // Hand memory freed by the previous step back to the OS, so the next step's peak is
        // measured from what it really needs, not from heap pages glibc kept around.
        NativeHeap.Trim();
        bool reset = PeakMemory.TryResetPeak();
        return (PeakMemory.CurrentBytes(), reset);
    }

    private static long PeakAbove(long baseline, bool reset) => reset ? Math.Max(0, PeakMemory.PeakBytes() - baseline) : -1;

    private static double Median(IEnumerable<double> xs)
    {
        var a = xs.Order().ToArray();
        return a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2;
    }

    private static void Print(ColmSettings s, int pool, int budget, int world, List<Sample> colm, List<Sample> big)
    {
        string Ms(double seconds) => (1000 * seconds).ToString("0.0", CultureInfo.InvariantCulture);
        string Mb(double bytes) => bytes < 0 ? "n/a" : (bytes / (1024.0 * 1024)).ToString("0.0", CultureInfo.InvariantCulture);
        double cSketch = Median(colm.Select(x => x.Sketch)), cSelect = Median(colm.Select(x => x.Select));
        double cTrain = Median(colm.Select(x => x.Train)), cReduce = Median(colm.Select(x => x.AllReduce));
        double cTotal = Median(colm.Select(x => x.Total)), bTotal = Median(big.Select(x => x.Total));
        double cMem = Median(colm.Select(x => (double)x.PeakAboveBaseline)), bMem = Median(big.Select(x => (double)x.PeakAboveBaseline));
        Console.WriteLine($"colm bench step: model dim {s.Model.Dim} x {s.Model.Layers} layers, LoRA r={s.Model.Lora.Rank}, " +
                          $"L={pool}, b={budget}, K={s.Selection.Probes}, {world} trainers, medians of {colm.Count} steps after {Warmup} warm-up");
        Console.WriteLine();
        Console.WriteLine("| step | sketch ms | select ms | train ms | all-reduce ms | total ms | peak above baseline MiB |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|");
        Console.WriteLine($"| CoLM (b from L) | {Ms(cSketch)} | {Ms(cSelect)} | {Ms(cTrain)} | {Ms(cReduce)} | {Ms(cTotal)} | {Mb(cMem)} |");
        Console.WriteLine($"| big batch (L) | - | - | {Ms(Median(big.Select(x => x.Train)))} | {Ms(Median(big.Select(x => x.AllReduce)))} | {Ms(bTotal)} | {Mb(bMem)} |");
        Console.WriteLine();
        string Ratio(double x, double target, bool atMost = true) =>
            $"{x.ToString("0.00", CultureInfo.InvariantCulture)} (target {(atMost ? "<=" : ">=")} {target.ToString("0.00", CultureInfo.InvariantCulture)}: {((atMost ? x <= target : x >= target) ? "met" : "NOT met")})";
        Console.WriteLine($"(sketch + select) / CoLM step      = {Ratio((cSketch + cSelect) / cTotal, 0.25)}");
        Console.WriteLine($"CoLM step time / big-batch time    = {Ratio(cTotal / bTotal, 0.80)}");
        if (cMem >= 0 && bMem > 0)
            Console.WriteLine($"CoLM peak memory / big-batch peak  = {Ratio(cMem / bMem, 0.60)}");
        else
            Console.WriteLine("peak memory: /proc/self/clear_refs not writable here, no per-step peak");
    }
}
