using System.Globalization;
using CoLM.Cluster.Configuration;
using CoLM.Cluster.Hosting;
using CoLM.Collectives;
using CoLM.Data;
using CoLM.Determinism;
using CoLM.Selection;
using CoLM.Training;
using CoLM.Training.Settings;

namespace CoLM.Cli;

/// <summary>
/// `colm bench fidelity`: how faithfully zeroth-order sketches with K probes stand in for the exact
/// per-example gradient feature (COLM.md step 4) on the configured model and data. One replica is
/// trained a few steps (LoRA B starts at zero, which makes every gradient a special case), then one
/// pool of L examples gets the exact feature g_i and, per K and probe seed, the rebuilt
/// g_i(zo) = (1/K) sum_k c_ik z_k. Reported: the Pearson correlation, over all pairs of the pool,
/// between pairwise L1 distances of the zo features and of the exact ones (facility location reads
/// L1 distances), the same for L2, the mean cosine between g_i(zo) and g_i, and sketch time per
/// example. These are raw features: the selector normalises and sparsifies both kinds alike.
/// </summary>
public static class SketchFidelityBenchmark
{
    private static readonly int[] ProbeCounts = [1, 4, 16, 64];
    private const int ProbeSeeds = 3, TrainSteps = 20, MinPool = 64;
    // Each sketch is timed this many times (results are deterministic, only the clock varies): the
    // median of seeds x repeats runs, after one untimed warm-up call per kind, resists a busy machine.
    private const int TimingRepeats = 3;
    // The smallest distance correlation that we call faithful enough for facility location.
    private const double Faithful = 0.9;

    public static int Run(IReadOnlyList<string> configFiles, IReadOnlyList<string> sets)
    {
        var settings = SettingsReader.Read(RunPlan.Layer(null, configFiles, sets));
        // One replica with every core; no warm-up of the learning rate and a schedule long enough
        // that the few training steps here run near the peak rate and actually move the model.
        settings = settings with
        {
            Train = settings.Train with { Trainers = 1, WarmupFraction = 0, Steps = Math.Max(settings.Train.Steps, 10 * TrainSteps) },
        };
        int pool = Math.Max(MinPool, settings.Selection.Pool);
        var data = RunPlan.LoadData(settings);
        TorchSharp.torch.set_num_threads(settings.Train.ThreadsFor(Environment.ProcessorCount));

        using var group = new InProcessCollectiveGroup(1, settings.Cluster.CollectiveTimeout);
        using var replica = new TrainerReplica(settings, data, 0, group.ForRank(0), FaultInjector.None);
        var sampler = new PoolSampler(data.Train.Count, settings.Run.Seed);
        var (lossBefore, lossAfter) = TrainBriefly(replica, sampler, Math.Max(1, settings.Selection.TrainedPerStep));

        int[] ids = sampler.Next(pool);
        int dim = replica.SketchDimension;
        // The exact feature does not depend on a seed; it is repeated only to time it like the zo rows.
        float[] exact = replica.Sketch(ids, SketchKind.Exact, 0, 0).Features;
        double exactMs = Median(Enumerable.Range(0, ProbeSeeds * TimingRepeats)
            .Select(_ => replica.Sketch(ids, SketchKind.Exact, 0, 0).Elapsed.TotalMilliseconds / ids.Length));
        replica.Sketch(ids, SketchKind.ZerothOrder, settings.Run.Seed, ProbeCounts[0]); // warm-up, untimed
        double[] exactL1 = PairDistances(exact, ids.Length, dim, l1: true);
        double[] exactL2 = PairDistances(exact, ids.Length, dim, l1: false);

        var rows = new List<Row>();
        foreach (int k in ProbeCounts)
        {
            var samples = new List<(double L1, double L2, double Cosine)>();
            var times = new List<double>();
            for (int s = 0; s < ProbeSeeds; s++)
            {
                long seed = RandomStreams.ProbeSeed(settings.Run.Seed, 1_000_000 + s);
                var sketch = replica.Sketch(ids, SketchKind.ZerothOrder, seed, k);
                times.Add(sketch.Elapsed.TotalMilliseconds / ids.Length);
                for (int t = 1; t < TimingRepeats; t++)
                    times.Add(replica.Sketch(ids, SketchKind.ZerothOrder, seed, k).Elapsed.TotalMilliseconds / ids.Length);
                float[] rebuilt = Rebuild(sketch.Coefficients, ids.Length, k, seed, dim);
                samples.Add((
                    Pearson(PairDistances(rebuilt, ids.Length, dim, l1: true), exactL1),
                    Pearson(PairDistances(rebuilt, ids.Length, dim, l1: false), exactL2),
                    MeanCosine(rebuilt, exact, ids.Length, dim)));
            }

            rows.Add(new Row(k, Stat.Of(samples.Select(x => x.L1)), Stat.Of(samples.Select(x => x.L2)),
                Stat.Of(samples.Select(x => x.Cosine)), Median(times)));
        }

        Print(settings.Model, dim, ids.Length, lossBefore, lossAfter, exactMs, rows);
        return ColmCommand.Ok;
    }

    private sealed record Row(int K, Stat L1, Stat L2, Stat Cosine, double MsPerExample);

    /// <summary>Mean and standard deviation over probe seeds.</summary>
    private sealed record Stat(double Mean, double Sd)
    {
        public static Stat Of(IEnumerable<double> values)
        {
            var v = values.ToArray();
            double mean = v.Average();
            double sd = v.Length > 1 ? Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Length - 1)) : 0;
            return new Stat(mean, sd);
        }

        public override string ToString() =>
            $"{Mean.ToString("0.000", CultureInfo.InvariantCulture)} ± {Sd.ToString("0.000", CultureInfo.InvariantCulture)}";
    }

    /// <summary>A few optimizer steps on random batches; returns the mean loss of the first and the last.</summary>
    private static (double Before, double After) TrainBriefly(TrainerReplica replica, PoolSampler sampler, int batch)
    {
        double first = 0, last = 0;
        for (int step = 1; step <= TrainSteps; step++)
        {
            int[] ids = sampler.Next(batch);
            var outcome = replica.Train(step, ids, Enumerable.Repeat(1f, ids.Length).ToArray(), ids.Length, false);
            last = outcome.WeightedLossSum / ids.Length;
            if (step == 1) first = last;
        }

        return (first, last);
    }

    /// <summary>g_i = (1/K) sum_k c_ik z_k for every row, z_k regenerated from the seed as the coordinator does.</summary>
    private static float[] Rebuild(float[] coefficients, int n, int probes, long seed, int dim)
    {
        var g = new float[n * dim];
        var z = new float[dim];
        for (int k = 0; k < probes; k++)
        {
            ProbeDirections.Fill(seed, k, z);
            for (int i = 0; i < n; i++)
            {
                float c = coefficients[i * probes + k] / probes;
                Span<float> row = g.AsSpan(i * dim, dim);
                for (int d = 0; d < dim; d++) row[d] += c * z[d];
            }
        }

        return g;
    }

    /// <summary>Distances of all pairs i &lt; j, in a fixed order, so two feature sets line up pair by pair.</summary>
    private static double[] PairDistances(float[] features, int n, int dim, bool l1)
    {
        var distances = new double[n * (n - 1) / 2];
        Parallel.For(0, n, i =>
        {
            ReadOnlySpan<float> a = features.AsSpan(i * dim, dim);
            // Pairs (i, j > i) start after the (n-1) + (n-2) + ... + (n-i) pairs of the earlier rows.
            int at = i * (2 * n - i - 1) / 2;
            for (int j = i + 1; j < n; j++)
            {
                ReadOnlySpan<float> b = features.AsSpan(j * dim, dim);
                double sum = 0;
                for (int d = 0; d < dim; d++)
                {
                    double diff = a[d] - b[d];
                    sum += l1 ? Math.Abs(diff) : diff * diff;
                }

                distances[at++] = l1 ? sum : Math.Sqrt(sum);
            }
        });
        return distances;
    }

    private static double Pearson(double[] x, double[] y)
    {
        double mx = x.Average(), my = y.Average();
        double sxy = 0, sxx = 0, syy = 0;
        for (int i = 0; i < x.Length; i++)
        {
            sxy += (x[i] - mx) * (y[i] - my);
            sxx += (x[i] - mx) * (x[i] - mx);
            syy += (y[i] - my) * (y[i] - my);
        }

        return sxx > 0 && syy > 0 ? sxy / Math.Sqrt(sxx * syy) : double.NaN;
    }

    /// <summary>
    /// Mean over rows of cos(a_i, b_i); a row where either side is zero counts as 0. For a
    /// K-probe sketch of a D-dim gradient it should come out near sqrt(K / (K + D)) (the table's
    /// last column): g(zo) is the gradient projected on K random directions, scaled back up.
    /// </summary>
    private static double MeanCosine(float[] a, float[] b, int n, int dim)
    {
        double total = 0;
        for (int i = 0; i < n; i++)
        {
            double dot = 0, na = 0, nb = 0;
            for (int d = i * dim; d < (i + 1) * dim; d++)
            {
                dot += (double)a[d] * b[d];
                na += (double)a[d] * a[d];
                nb += (double)b[d] * b[d];
            }

            if (na > 0 && nb > 0) total += dot / Math.Sqrt(na * nb);
        }

        return total / n;
    }

    private static double Median(IEnumerable<double> xs)
    {
        var a = xs.Order().ToArray();
        return a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2;
    }

    private static void Print(ModelSettings model, int dim, int pool, double lossBefore, double lossAfter, double exactMs, List<Row> rows)
    {
        string F(double x, string format = "0.000") => x.ToString(format, CultureInfo.InvariantCulture);
        Console.WriteLine($"colm bench fidelity: model dim {model.Dim} x {model.Layers} layers, LoRA r={model.Lora.Rank}, " +
                          $"feature D = {dim} (last layer v_proj LoRA B), pool L = {pool} ({pool * (pool - 1) / 2} pairs), " +
                          $"{ProbeSeeds} probe seeds (mean ± sd); after {TrainSteps} training steps (loss {F(lossBefore)} -> {F(lossAfter)})");
        Console.WriteLine();
        Console.WriteLine("| feature | K | floats sent / example | sketch ms / example | corr. of L1 distances | corr. of L2 distances | mean cos(g_zo, g_exact) | sqrt(K / (K + D)) |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        Console.WriteLine($"| exact | - | {dim} | {F(exactMs, "0.00")} | 1 | 1 | 1 | 1 |");
        foreach (var r in rows)
            Console.WriteLine($"| zo | {r.K} | {r.K} | {F(r.MsPerExample, "0.00")} | {r.L1} | {r.L2} | {r.Cosine} | {F(Math.Sqrt(r.K / (double)(r.K + dim)))} |");
        Console.WriteLine();

        // Facility location reads L1 distances: the smallest K that keeps them faithful is the one to pick.
        var enough = rows.FirstOrDefault(r => r.L1.Mean >= Faithful);
        if (enough is null)
        {
            Console.WriteLine($"choosing K: no K up to {ProbeCounts[^1]} reaches an L1-distance correlation of {F(Faithful, "0.0")} on this model; " +
                              $"prefer colm.selection.feature = exact ({F(exactMs, "0.00")} ms per example) or try a larger K.");
            return;
        }

        var fewer = rows.LastOrDefault(r => r.K < enough.K);
        string below = fewer is null ? "" : $" (K = {fewer.K}: {F(fewer.L1.Mean)})";
        string advice = enough.MsPerExample >= 0.9 * exactMs
            ? $"exact costs about as much or less here ({F(exactMs, "0.00")} ms), so prefer colm.selection.feature = exact, " +
              $"unless its {dim} floats per example over the network matter more than {enough.K}"
            : $"cheaper than exact ({F(exactMs, "0.00")} ms): set colm.selection.probes = {enough.K}";
        Console.WriteLine($"choosing K: K = {enough.K} is the smallest K whose L1 distances correlate >= {F(Faithful, "0.0")} with the exact ones{below}; " +
                          $"it costs {F(enough.MsPerExample, "0.00")} ms per example, {advice}.");
    }
}
