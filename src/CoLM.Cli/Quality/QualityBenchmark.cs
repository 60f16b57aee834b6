using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using CoLM.Cluster.Configuration;
using CoLM.Cluster.Hosting;
using CoLM.Cluster.Runs;
using CoLM.Telemetry;

namespace CoLM.Cli.Quality;

/// <summary>
/// `colm bench quality`: every variant x seed (x learning rate, with --lr) trained on the same
/// model, data and step count through the normal run path, one after another in this process.
/// With a learning-rate grid each arm is reported at its own best rate (lowest mean final
/// held-out loss over the seeds), so no arm loses for a rate tuned to another. Each finished run
/// leaves quality.json in its run directory, so an interrupted comparison resumes where it
/// stopped; a run without it is started again from scratch.
/// </summary>
public static class QualityBenchmark
{
    public const string DefaultOut = "runs/quality";

    /// <summary>
    /// Each arm is tuned over these rates unless --lr says otherwise: the configured 0.003 and
    /// twice it (a smaller b often wants a larger rate); --lr 1e-3,3e-3,6e-3 widens the grid at
    /// 1.5x the time. Two rates keep the default comparison within about an hour on 2 cores.
    /// </summary>
    public const string DefaultRates = "0.003,0.006";

    /// <summary>
    /// Settings every run of the comparison starts from, before the command line's: an evaluation
    /// every 100 steps (each evaluates 200 held-out examples per source, the costliest part of a
    /// short run), enough for steps-to-target-loss.
    /// </summary>
    private static readonly string[] BenchDefaults = ["colm.train.eval-every=100"];

    public static async Task<int> RunAsync(CommandLine cl, CancellationToken stop)
    {
        var o = cl.Options;
        string outDir = Path.GetFullPath(o.GetValueOrDefault("out", DefaultOut));
        int seeds = ParseInt(o.GetValueOrDefault("seeds", "5"), "--seeds");
        // 1.5: reached within 300 steps by some arms of the default comparison on the pretrained base, not all (2.0 was, by every arm at the first evaluation).
        double targetLoss = ParseDouble(o.GetValueOrDefault("target-loss", "1.5"), "--target-loss");
        cl = cl with { Sets = [.. BenchDefaults, .. cl.Sets] };
        var baseSettings = SettingsReader.Read(RunPlan.Layer(null, cl.ConfigFiles, cl.Sets));
        var all = QualityVariant.Defaults(baseSettings.Selection.Budget);
        var variants = o.TryGetValue("methods", out var names)
            ? names.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(n => all.FirstOrDefault(v => v.Name == n)
                    ?? throw new UsageException($"--methods: unknown variant '{n}'; known: {string.Join(", ", all.Select(v => v.Name))}"))
                .ToArray()
            : QualityVariant.DefaultNames.Select(n => all.Single(v => v.Name == n)).ToArray();

        // --lr none: the configured rate, and run names without it (so older comparisons resume).
        var rates = o.GetValueOrDefault("lr", DefaultRates);
        double[]? grid = rates == "none" ? null : ParseRates(rates);
        double[] lrs = grid ?? [baseSettings.Train.LearningRate];
        Directory.CreateDirectory(outDir);
        var results = new List<QualityResult>();
        int total = variants.Length * seeds * lrs.Length, index = 0;
        Console.WriteLine($"colm bench quality: {variants.Length} variants x {seeds} seeds" + (grid is null ? "" : $" x {lrs.Length} learning rates") +
                          $", {baseSettings.Train.Steps} steps each, output {outDir}");
        await WarmUpAsync(outDir, cl, stop);
        foreach (var variant in variants)
            foreach (double lr in lrs)
            {
                for (long seed = 1; seed <= seeds; seed++)
                {
                    index++;
                    string name = grid is null ? $"{variant.Name}-seed{seed}" : $"{variant.Name}-lr{lr.ToString("R", CultureInfo.InvariantCulture)}-seed{seed}";
                    string runDir = Path.Combine(outDir, "runs", name);
                    var saved = Path.Combine(runDir, "quality.json");
                    if (File.Exists(saved))
                    {
                        results.Add(JsonSerializer.Deserialize<QualityResult>(File.ReadAllText(saved))!);
                        Console.WriteLine($"[{index}/{total}] {name}: done earlier, reused");
                        continue;
                    }
                    if (Directory.Exists(runDir)) Directory.Delete(runDir, recursive: true);
                    stop.ThrowIfCancellationRequested();
                    var result = await RunOneAsync(variant, seed, grid is null ? null : lr, name, outDir, cl, stop);
                    File.WriteAllText(saved, JsonSerializer.Serialize(result));
                    results.Add(result);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"[{index}/{total}] {name}: held-out loss {result.Final.MeanLoss:0.000}, exact match {100 * result.Final.MeanAccuracy:0.0}%, {result.WallSeconds:0}s, peak +{result.PeakBytesAboveBaseline / 1048576.0:0} MiB"));
                }
            }

        var (best, tuning) = grid is null ? (results, null) : BestRatePerArm(variants, results);
        var report = new QualityReport(variants, best, targetLoss, baseSettings) { Tuning = tuning };
        report.Write(outDir);
        Console.WriteLine();
        Console.WriteLine(File.ReadAllText(Path.Combine(outDir, QualityReport.TableFile)));
        Console.WriteLine($"colm: table, CSV and plots in {outDir}");
        return ColmCommand.Ok;
    }

    /// <summary>Each arm's runs at the rate with its lowest mean final held-out loss, and a line per arm saying what was tried.</summary>
    private static (List<QualityResult> Best, string Tuning) BestRatePerArm(IReadOnlyList<QualityVariant> variants, List<QualityResult> results)
    {
        var best = new List<QualityResult>();
        var lines = new List<string>();
        foreach (var variant in variants)
        {
            var byRate = results.Where(r => r.Variant == variant.Name).GroupBy(r => r.LearningRate)
                .Select(g => (Rate: g.Key, Loss: g.Average(r => r.Final.MeanLoss), Runs: g.ToList())).OrderBy(x => x.Rate).ToList();
            if (byRate.Count == 0) continue;
            var winner = byRate.MinBy(x => x.Loss);
            best.AddRange(winner.Runs);
            lines.Add($"| {variant.Description} | " + string.Join(", ", byRate.Select(x =>
                string.Create(CultureInfo.InvariantCulture, $"{x.Rate:R}: {x.Loss:0.000}{(x.Rate == winner.Rate ? " (best)" : "")}"))) + " |");
        }
        return (best, string.Join('\n', lines));
    }

    private static double[] ParseRates(string text)
    {
        var rates = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(t => double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v > 0 && double.IsFinite(v)
                ? v : throw new UsageException($"--lr: expected positive numbers separated by commas, got '{t}'"))
            .Distinct().ToArray();
        return rates.Length > 0 ? rates : throw new UsageException("--lr: give at least one learning rate, e.g. --lr 1e-3,3e-3,6e-3");
    }

    private static async Task<QualityResult> RunOneAsync(QualityVariant variant, long seed, double? lr, string name, string outDir,
        CommandLine cl, CancellationToken stop)
    {
        string[] sets =
        [
            .. cl.Sets, .. variant.Sets, $"colm.run.seed={seed}", $"colm.run.root={Path.Combine(outDir, "runs")}",
            $"colm.run.name={name}", .. lr is { } rate ? [string.Create(CultureInfo.InvariantCulture, $"colm.train.learning-rate={rate:R}")] : Array.Empty<string>(),
        ];
        var plan = RunPlan.Prepare(cl.ConfigFiles, sets, null);
        GC.Collect();
        NativeHeap.Trim();
        PeakMemory.TryResetPeak();
        long baseline = PeakMemory.CurrentBytes();
        var clock = Stopwatch.StartNew();
        var result = await LocalRun.RunAsync(plan, new ConsoleProgress(quiet: true), stop);
        double wall = clock.Elapsed.TotalSeconds;
        long peak = Math.Max(0, PeakMemory.PeakBytes() - baseline);
        if (result.State != "completed")
            throw new QualityRunFailedException($"{name} {result.State}: {result.Error ?? "stopped"} (run directory {plan.Run.Path})");
        return new QualityResult(variant.Name, seed, wall, peak, QualityResult.ReadEvals(plan.Run.MetricsFile), plan.Settings.Train.LearningRate,
            QualityResult.SharesOf(plan.Data.SourceNames, plan.Data.TrainCountPerSource));
    }

    /// <summary>
    /// One short unmeasured run first: loading libtorch, Akka and the JIT raises the process's
    /// resident memory once, and would otherwise be charged to whichever variant ran first.
    /// </summary>
    private static async Task WarmUpAsync(string outDir, CommandLine cl, CancellationToken stop)
    {
        string root = Path.Combine(outDir, ".warmup");
        if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        var plan = RunPlan.Prepare(cl.ConfigFiles,
            [.. cl.Sets, "colm.train.steps=2", "colm.telemetry.exporter=none", $"colm.run.root={root}", "colm.run.name=warmup"], null);
        await LocalRun.RunAsync(plan, new ConsoleProgress(quiet: true), stop);
        Directory.Delete(root, recursive: true);
    }

    private static int ParseInt(string s, string option) =>
        int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v > 0 ? v : throw new UsageException($"{option}: expected a positive integer, got '{s}'");

    private static double ParseDouble(string s, string option) =>
        double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : throw new UsageException($"{option}: expected a number, got '{s}'");
}

public sealed class QualityRunFailedException(string message) : Exception(message);
