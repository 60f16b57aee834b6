using System.Globalization;
using System.Text;
using CoLM.Cli.Quality;
using CoLM.Cluster.Hosting;
using CoLM.Cluster.Runs;
using CoLM.Collectives;
using CoLM.Data;
using CoLM.Determinism;
using CoLM.Selection;
using CoLM.Training;
using CoLM.Training.Settings;

namespace CoLM.Cli;

/// <summary>
/// `colm bench matching`: will CoLM help on this model and data? At several points of a real run
/// (`colm train` with the user's settings, checkpointed every N steps), each method's coreset of
/// b is chosen from the same fresh pools of L, and its gradient is compared with the whole pool's:
/// the matching error ||g_coreset - g_pool|| / ||g_pool||, of the whole LoRA gradient and of the
/// last layer's v_proj LoRA-B (the part the sketch looks at). A coreset method earns its keep when
/// its error is below source-balanced random and random at the same b.
///
/// Beside the errors: the share of each coreset made of repeated examples (token sequences that
/// occur more than once in the training data), which shows whether a method sees through copies.
///
/// The selection is the run's own selector (<see cref="CoresetSelector"/>, the normaliser history
/// restored from each checkpoint); every pool row is sketched, where a run sketches only the rows
/// its method looks at. Gradients are taken with dropout off, so they depend only on the examples.
/// </summary>
public static class MatchingBenchmark
{
    public const string DefaultOut = "runs/matching";
    private const int DefaultPools = 8;

    public static async Task<int> RunAsync(CommandLine cl, CancellationToken stop)
    {
        var o = cl.Options;
        string outDir = Path.GetFullPath(o.GetValueOrDefault("out", DefaultOut));
        int pools = PositiveOption(o, "pools", DefaultPools);
        var s = Cluster.Configuration.SettingsReader.Read(RunPlan.Layer(null, cl.ConfigFiles, cl.Sets));
        int every = PositiveOption(o, "every", Math.Max(1, s.Train.Steps / 3));
        if (Directory.Exists(Path.Combine(outDir, "trained")))
            throw new UsageException($"--out {outDir} already holds a matching run (trained/); choose another --out or remove it");

        // 1. The user's run, unchanged but for where it writes and how often it checkpoints.
        var plan = RunPlan.Prepare(cl.ConfigFiles, [.. cl.Sets, "colm.run.root=" + Quote(outDir), "colm.run.name=trained",
            $"colm.train.checkpoint-every={every}", $"colm.train.keep-checkpoints={s.Train.Steps / every + 2}"], null);
        Console.WriteLine($"colm bench matching: training {s.Train.Steps} steps ({SelectionMethods.Name(s.Selection.Method)}, L={s.Selection.Pool}, " +
                          $"b={s.Selection.Budget}) in {plan.Run.Path}, measuring at step 0 and every {every} steps on {pools} pools");
        var result = await LocalRun.RunAsync(plan, new ConsoleProgress(cl.Quiet), stop);
        if (result.State != "completed") throw new QualityRunFailedException($"the training run ended {result.State}: {result.Error}");

        // 2. The matching errors at step 0 and at every checkpoint, on the same pools each time.
        s = plan.Settings;
        var data = plan.Data;
        var small = SmallSourceShare.Flags(s.Selection, data);
        var methods = Methods(s.Selection.Method);
        bool[] repeated = RepeatedExamples(data);
        var rows = new List<Row>();
        TorchSharp.torch.set_num_threads(Environment.ProcessorCount);
        using var group = new InProcessCollectiveGroup(1, s.Cluster.CollectiveTimeout);
        using var replica = new TrainerReplica(s, data, 0, group.ForRank(0), FaultInjector.None);
        var checkpoints = CheckpointStore.All(plan.Run).OrderBy(c => c.Step).ToList();
        foreach (var at in new CheckpointPaths?[] { null }.Concat(checkpoints))
        {
            NormalizerState? normalizer = null;
            if (at is not null)
            {
                replica.ImportState(File.ReadAllBytes(at.TrainerState), at.TrainerState);
                normalizer = CheckpointStore.Load(at).Normalizer;
            }
            long step = at?.Step ?? 0;
            rows.AddRange(MeasureAt(step, replica, s, data, small, methods, normalizer, pools, repeated));
            Console.WriteLine($"colm bench matching: step {step} measured");
        }

        string report = Report(s, every, pools, methods, rows);
        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, "matching.md"), report);
        File.WriteAllText(Path.Combine(outDir, "matching.csv"), Csv(rows));
        Console.WriteLine();
        Console.Write(report);
        Console.WriteLine($"colm bench matching: wrote {Path.Combine(outDir, "matching.md")} and matching.csv");
        return 0;
    }

    /// <summary>The configured method first, then the baselines it must beat, then big-batch (error 0 by construction: a check).</summary>
    private static SelectionMethod[] Methods(SelectionMethod configured) =>
        [.. new[] { configured, SelectionMethod.SourceBalancedRandom, SelectionMethod.Random, SelectionMethod.BigBatch }.Distinct()];

    /// <param name="HeldoutCosine">
    /// cos(g_coreset, g_heldout) on the whole LoRA gradient, g_heldout being the gradient of the
    /// held-out loss as evaluated (the mean over trained sources of each source's mean): how far
    /// the step moves toward lower held-out loss. Where the held-out set differs from the training
    /// mix (as in the planted control), matching g_pool is not the goal; aligning with g_heldout is.
    /// </param>
    private sealed record Row(long Step, int Pool, string Method, int Trained, double WholeError, double SketchError, double RepeatedShare,
        double HeldoutCosine);

    /// <summary>Held-out examples of trained sources, each weighted so every source counts alike (the evaluation's macro mean).</summary>
    private static (int[] Ids, float[] Weights) HeldoutTarget(DataMixture data)
    {
        var ids = Enumerable.Range(0, data.Heldout.Count).Where(i => !data.HeldoutOnlySources.Contains(data.SourceNames[data.Heldout[i].SourceId])).ToArray();
        int sources = ids.Select(i => data.Heldout[i].SourceId).Distinct().Count();
        return (ids, [.. ids.Select(i => 1f / (data.HeldoutCountPerSource[data.Heldout[i].SourceId] * sources))]);
    }

    internal static double Cosine(float[] a, float[] b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            dot += (double)a[i] * b[i];
            na += (double)a[i] * a[i];
            nb += (double)b[i] * b[i];
        }
        return na == 0 || nb == 0 ? double.NaN : dot / Math.Sqrt(na * nb);
    }

    /// <summary>
    /// Per training example: does its token sequence occur more than once in the training data?
    /// Reads every training example once (<see cref="StableHash"/> of the tokens; a collision only miscounts).
    /// </summary>
    private static bool[] RepeatedExamples(DataMixture data)
    {
        var hashes = new ulong[data.Train.Count];
        var counts = new Dictionary<ulong, int>();
        for (int id = 0; id < hashes.Length; id++)
        {
            ulong h = StableHash.Of(data.Train[id].Tokens);
            hashes[id] = h;
            counts[h] = counts.GetValueOrDefault(h) + 1;
        }
        return [.. hashes.Select(h => counts[h] > 1)];
    }

    private static IEnumerable<Row> MeasureAt(long step, TrainerReplica replica, ColmSettings s, DataMixture data, bool[] small,
        SelectionMethod[] methods, NormalizerState? normalizer, int pools, bool[] repeated)
    {
        var sel = s.Selection;
        var kind = sel.Feature == FeatureMode.Exact ? SketchKind.Exact : SketchKind.ZerothOrder;
        int probes = kind == SketchKind.ZerothOrder ? sel.EffectiveProbes : 0;
        int width = replica.SketchDimension;
        // The same pools at every step, apart from the run's own (another seed stream).
        var sampler = new PoolSampler(data.Train.Count, RandomStreams.MatchingPoolSeed(s.Run.Seed));
        var (heldoutIds, heldoutWeights) = HeldoutTarget(data);
        float[]? heldoutGradient = heldoutIds.Length > 0 ? replica.HeldoutGradientOf(heldoutIds, heldoutWeights).All : null;
        for (int p = 0; p < pools; p++)
        {
            int[] pool = sampler.Next(sel.Pool);
            long probeSeed = sel.ProbeSeed(s.Run.Seed, 1_000_000 + p);
            var sketch = replica.Sketch(pool, kind, probeSeed, probes);
            var builder = new PoolSketchBuilder(pool, probes, kind == SketchKind.Exact ? width : 0);
            builder.Add(pool, sketch.Losses, sketch.Coefficients, sketch.Features);
            var poolSketch = builder.Build([.. pool.Select(id => data.TrainSourceIds[id])], probeSeed, width);
            var (poolAll, poolSketchGrad) = replica.GradientOf(pool, Enumerable.Repeat(1f, pool.Length).ToArray());
            foreach (var method in methods)
            {
                var selector = new CoresetSelector(sel.ToOptions() with { Method = method }, small, width);
                if (normalizer is not null && method == SelectionMethod.Colm) selector.RestoreNormalizer(normalizer);
                int budget = method == SelectionMethod.BigBatch ? sel.Pool : sel.Budget;
                var chosen = selector.Select(poolSketch, budget, RandomStreams.SelectionSeed(s.Run.Seed, 1_000_000 + p));
                var (all, sketchGrad) = replica.GradientOf(chosen.ExampleIds, chosen.Weights);
                yield return new Row(step, p, SelectionMethods.Name(method), chosen.ExampleIds.Length,
                    RelativeError(all, poolAll), RelativeError(sketchGrad, poolSketchGrad),
                    chosen.ExampleIds.Count(id => repeated[id]) / (double)chosen.ExampleIds.Length,
                    heldoutGradient is null ? double.NaN : Cosine(all, heldoutGradient));
            }
        }
    }

    /// <summary>||a - b|| / ||b||, in doubles; NaN when the pool gradient is zero.</summary>
    internal static double RelativeError(float[] a, float[] b)
    {
        double diff = 0, norm = 0;
        for (int i = 0; i < b.Length; i++)
        {
            double d = (double)a[i] - b[i];
            diff += d * d;
            norm += (double)b[i] * b[i];
        }
        return norm == 0 ? double.NaN : Math.Sqrt(diff / norm);
    }

    private static string Report(ColmSettings s, int every, int pools, SelectionMethod[] methods, List<Row> rows)
    {
        static string F(double x) => x.ToString("0.000", CultureInfo.InvariantCulture);
        static (double Mean, double Half) MeanCi(IReadOnlyList<double> xs)
        {
            double mean = xs.Average();
            double sd = xs.Count > 1 ? Math.Sqrt(xs.Sum(x => (x - mean) * (x - mean)) / (xs.Count - 1)) : 0;
            return (mean, 1.96 * sd / Math.Sqrt(xs.Count));
        }

        var sb = new StringBuilder();
        sb.AppendLine($"# Gradient matching: ||g_coreset - g_pool|| / ||g_pool|| (L = {s.Selection.Pool}, b = {s.Selection.Budget}, {pools} pools per step)");
        sb.AppendLine();
        sb.AppendLine($"Trained with {SelectionMethods.Name(s.Selection.Method)} (feature {s.Selection.Feature.ToString().ToLowerInvariant()}, K = {s.Selection.EffectiveProbes}), measured at step 0 and every {every} steps. " +
                      "Mean +- 1.96 standard errors over pools (a normal-approximation 95% interval; few pools make it rough). Lower is a better match; big-batch trains on the whole pool, so its error is 0 by construction. " +
                      "Repeated examples: the share of the coreset whose token sequence occurs more than once in the training data (big-batch: the pool's own share). " +
                      "Held-out alignment: cos(g_coreset, g_heldout), the whole LoRA gradient against the gradient of the held-out loss as evaluated; higher moves the step further toward lower held-out loss.");
        sb.AppendLine();
        sb.AppendLine("| step | method | examples | whole LoRA gradient | last-layer v_proj LoRA-B | repeated examples | held-out alignment |");
        sb.AppendLine("|---:|---|---:|---:|---:|---:|---:|");
        foreach (var stepRows in rows.GroupBy(r => r.Step))
            foreach (var m in methods.Select(SelectionMethods.Name))
            {
                var mr = stepRows.Where(r => r.Method == m).ToList();
                var (w, wh) = MeanCi([.. mr.Select(r => r.WholeError)]);
                var (v, vh) = MeanCi([.. mr.Select(r => r.SketchError)]);
                var (c, ch) = MeanCi([.. mr.Select(r => r.HeldoutCosine)]);
                sb.AppendLine($"| {stepRows.Key} | {m} | {mr[0].Trained} | {F(w)} +- {F(wh)} | {F(v)} +- {F(vh)} | {100 * mr.Average(r => r.RepeatedShare):0.0}% | {F(c)} +- {F(ch)} |");
            }

        string mine = SelectionMethods.Name(s.Selection.Method);
        foreach (var baseline in new[] { SelectionMethod.SourceBalancedRandom, SelectionMethod.Random }.Select(SelectionMethods.Name).Where(b => b != mine))
        {
            sb.AppendLine();
            sb.AppendLine($"Paired difference {mine} - {baseline} (same pools; negative error: {mine} matches the pool gradient better; positive alignment: {mine}'s step points further toward lower held-out loss):");
            sb.AppendLine();
            sb.AppendLine("| step | whole LoRA gradient | last-layer v_proj LoRA-B | held-out alignment |");
            sb.AppendLine("|---:|---:|---:|---:|");
            foreach (var stepRows in rows.GroupBy(r => r.Step))
            {
                var a = stepRows.Where(r => r.Method == mine).OrderBy(r => r.Pool).ToList();
                var b = stepRows.Where(r => r.Method == baseline).OrderBy(r => r.Pool).ToList();
                var (w, wh) = MeanCi([.. a.Zip(b, (x, y) => x.WholeError - y.WholeError)]);
                var (v, vh) = MeanCi([.. a.Zip(b, (x, y) => x.SketchError - y.SketchError)]);
                var (c, ch) = MeanCi([.. a.Zip(b, (x, y) => x.HeldoutCosine - y.HeldoutCosine)]);
                sb.AppendLine($"| {stepRows.Key} | {F(w)} +- {F(wh)} | {F(v)} +- {F(vh)} | {F(c)} +- {F(ch)} |");
            }
        }
        return sb.ToString();
    }

    private static string Csv(List<Row> rows)
    {
        var sb = new StringBuilder("step,pool,method,examples,whole_error,sketch_error,repeated_share,heldout_cosine\n");
        foreach (var r in rows)
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"{r.Step},{r.Pool},{r.Method},{r.Trained},{r.WholeError:R},{r.SketchError:R},{r.RepeatedShare:R},{r.HeldoutCosine:R}"));
        return sb.ToString();
    }

    private static int PositiveOption(IReadOnlyDictionary<string, string> o, string name, int fallback)
    {
        if (!o.TryGetValue(name, out var text)) return fallback;
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v > 0
            ? v
            : throw new UsageException($"--{name} must be a positive whole number, got '{text}'");
    }

    private static string Quote(string path) => Cluster.Configuration.HoconSources.Quote(path);
}
