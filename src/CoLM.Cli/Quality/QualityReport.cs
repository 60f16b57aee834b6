using System.Globalization;
using System.Text;
using CoLM.Training.Settings;

namespace CoLM.Cli.Quality;

/// <summary>The comparison table (markdown + CSV) and the loss plots of a quality benchmark.</summary>
public sealed class QualityReport(IReadOnlyList<QualityVariant> variants, IReadOnlyList<QualityResult> results, double targetLoss, ColmSettings settings)
{
    public const string TableFile = "quality.md", CsvFile = "quality.csv", LossByStepPlot = "loss-by-step.png", LossByTimePlot = "loss-by-time.png";

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>With a learning-rate grid: one table row per arm, each rate tried with its mean final held-out loss.</summary>
    public string? Tuning { get; init; }

    public void Write(string outDir)
    {
        var sources = results.SelectMany(r => r.Final.Accuracy.Keys).Distinct().Order(StringComparer.Ordinal).ToArray();
        File.WriteAllText(Path.Combine(outDir, TableFile), Markdown(sources));
        File.WriteAllText(Path.Combine(outDir, CsvFile), Csv(sources));
        QualityPlots.Write(Path.Combine(outDir, LossByStepPlot), Path.Combine(outDir, LossByTimePlot), variants, results);
    }

    private IEnumerable<(QualityVariant Variant, QualityResult[] Runs)> Groups() =>
        variants.Select(v => (v, results.Where(r => r.Variant == v.Name).OrderBy(r => r.Seed).ToArray())).Where(g => g.Item2.Length > 0);

    private string Markdown(string[] sources)
    {
        var sb = new StringBuilder();
        int seeds = results.Select(r => r.Seed).Distinct().Count();
        string rate = Tuning is null ? $"learning rate {settings.Train.LearningRate.ToString(Inv)}" : "each arm at its best learning rate (below)";
        sb.AppendLine($"{settings.Train.Steps} steps, {rate}, {settings.Train.Trainers} trainers, " +
                      $"{seeds} seeds (mean +- std); held-out exact match in %; steps to loss = first evaluation (every {settings.Train.EvalEvery} steps) at or below {targetLoss.ToString(Inv)}.");
        sb.AppendLine();
        sb.AppendLine("| variant | avg exact match | final held-out loss (macro: sources alike) | data-weighted held-out loss | peak memory above baseline (MiB) | wall time (s) | steps to loss | " +
                      string.Join(" | ", sources) + " |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|" + string.Concat(sources.Select(_ => "---:|")));
        foreach (var (variant, runs) in Groups())
        {
            var steps = runs.Select(r => r.StepsToLoss(targetLoss)).ToArray();
            string reached = steps.All(s => s is not null)
                ? MeanStd(steps.Select(s => (double)s!.Value), "0")
                : $"{steps.Count(s => s is not null)}/{runs.Length} reached";
            sb.Append($"| {variant.Description} | {MeanStd(runs.Select(r => 100 * r.Final.MeanAccuracy), "0.0")} | ");
            sb.Append($"{MeanStd(runs.Select(r => r.Final.MeanLoss), "0.000")} | {WeightedLoss(runs)} | {MeanStd(runs.Select(r => r.PeakBytesAboveBaseline / 1048576.0), "0")} | ");
            sb.Append($"{MeanStd(runs.Select(r => r.WallSeconds), "0")} | {reached} | ");
            sb.AppendLine(string.Join(" | ", sources.Select(s => MeanStd(runs.Select(r => 100 * r.Final.Accuracy.GetValueOrDefault(s)), "0.0"))) + " |");
        }
        AppendLossPerSource(sb, sources);
        AppendPairedDifferences(sb);
        if (Tuning is not null)
        {
            sb.AppendLine();
            sb.AppendLine("Learning rates tried per arm (mean final held-out loss over the seeds); the best one is reported above:");
            sb.AppendLine();
            sb.AppendLine("| variant | rates |");
            sb.AppendLine("|---|---|");
            sb.AppendLine(Tuning);
        }
        return sb.ToString();
    }

    /// <summary>Final held-out loss per source: where exact match is all zeros at this scale, the loss still shows what an arm learned.</summary>
    private void AppendLossPerSource(StringBuilder sb, string[] sources)
    {
        var groups = Groups().Where(g => g.Runs.All(r => r.Final.Loss is not null)).ToArray();
        if (groups.Length == 0) return;
        sb.AppendLine();
        sb.AppendLine("Final held-out loss per source (mean +- std):");
        sb.AppendLine();
        sb.AppendLine("| variant | " + string.Join(" | ", sources) + " |");
        sb.AppendLine("|---|" + string.Concat(sources.Select(_ => "---:|")));
        foreach (var (variant, runs) in groups)
            sb.AppendLine($"| {variant.Description} | " +
                          string.Join(" | ", sources.Select(s => MeanStd(runs.Select(r => r.Final.Loss!.GetValueOrDefault(s, double.NaN)), "0.000"))) + " |");
    }

    /// <summary>The arms every other is judged against: random at 2b, and source-balanced random at b.</summary>
    private static readonly string[] References = ["random-2b", "sbr-b"];

    /// <summary>
    /// Each arm minus a reference arm, paired by seed (the same seed draws the same pool sequence
    /// for arms with the same pool size): mean and 95% interval with Student's t, since the seeds are few.
    /// </summary>
    private void AppendPairedDifferences(StringBuilder sb)
    {
        var groups = Groups().ToArray();
        foreach (var reference in References)
        {
            var refRuns = groups.FirstOrDefault(g => g.Variant.Name == reference).Runs;
            if (refRuns is null) continue;
            var others = groups.Where(g => g.Variant.Name != reference).ToArray();
            if (others.Length == 0) continue;
            string refName = groups.First(g => g.Variant.Name == reference).Variant.Description;
            sb.AppendLine();
            sb.AppendLine($"Paired difference against {refName} (same seeds; mean and 95% interval, Student's t; " +
                          "held-out loss below 0 and exact match above 0 favour the arm; an interval that excludes 0 is marked *):");
            sb.AppendLine();
            sb.AppendLine("| variant | seeds | held-out loss difference | data-weighted held-out loss difference | exact match difference (points) |");
            sb.AppendLine("|---|---:|---:|---:|---:|");
            foreach (var (variant, runs) in others)
            {
                var pairs = runs.Join(refRuns, r => r.Seed, r => r.Seed, (a, b) => (A: a, B: b)).ToArray();
                if (pairs.Length < 2) continue;
                var weighted = pairs.All(p => p.A.FinalWeightedLoss is not null && p.B.FinalWeightedLoss is not null)
                    ? Interval(pairs.Select(p => p.A.FinalWeightedLoss!.Value - p.B.FinalWeightedLoss!.Value), "0.000")
                    : "n/a";
                sb.AppendLine($"| {variant.Description} | {pairs.Length} | {Interval(pairs.Select(p => p.A.Final.MeanLoss - p.B.Final.MeanLoss), "0.000")} | " +
                              $"{weighted} | {Interval(pairs.Select(p => 100 * (p.A.Final.MeanAccuracy - p.B.Final.MeanAccuracy)), "0.0")} |");
            }
            AppendPerSourceDifferences(sb, refName, refRuns, others);
        }
    }

    /// <summary>
    /// The same paired differences source by source (final held-out loss): a method that helps one
    /// source and costs another shows it here, where the macro mean would hide both.
    /// </summary>
    private static void AppendPerSourceDifferences(StringBuilder sb, string refName, QualityResult[] refRuns,
        (QualityVariant Variant, QualityResult[] Runs)[] others)
    {
        if (refRuns.Any(r => r.Final.Loss is null)) return;
        var sources = refRuns[0].Final.Loss!.Keys.Order(StringComparer.Ordinal).ToArray();
        var rows = new List<string>();
        foreach (var (variant, runs) in others)
        {
            var pairs = runs.Join(refRuns, r => r.Seed, r => r.Seed, (a, b) => (A: a.Final.Loss, B: b.Final.Loss!)).ToArray();
            if (pairs.Length < 2 || pairs.Any(p => p.A is null)) continue;
            rows.Add($"| {variant.Description} | " + string.Join(" | ", sources.Select(s =>
                pairs.All(p => p.A!.ContainsKey(s) && p.B.ContainsKey(s)) ? Interval(pairs.Select(p => p.A![s] - p.B[s]), "0.000") : "n/a")) + " |");
        }
        if (rows.Count == 0) return;
        sb.AppendLine();
        sb.AppendLine($"Per source: final held-out loss minus {refName}'s (same seeds; mean and 95% interval):");
        sb.AppendLine();
        sb.AppendLine("| variant | " + string.Join(" | ", sources) + " |");
        sb.AppendLine("|---|" + string.Concat(sources.Select(_ => "---:|")));
        foreach (var row in rows) sb.AppendLine(row);
    }

    /// <summary>"mean [low, high]" of a 95% Student-t interval, with * when it excludes 0.</summary>
    public static string Interval(IEnumerable<double> values, string format)
    {
        var xs = values.ToArray();
        double mean = xs.Average();
        double sd = Math.Sqrt(xs.Sum(x => (x - mean) * (x - mean)) / (xs.Length - 1));
        double half = StudentT975(xs.Length - 1) * sd / Math.Sqrt(xs.Length);
        string mark = mean - half > 0 || mean + half < 0 ? " *" : "";
        return $"{mean.ToString(format, Inv)} [{(mean - half).ToString(format, Inv)}, {(mean + half).ToString(format, Inv)}]{mark}";
    }

    /// <summary>The 97.5% quantile of Student's t with <paramref name="df"/> degrees of freedom (table to 30, then the normal's).</summary>
    public static double StudentT975(int df) => df switch
    {
        < 1 => throw new ArgumentOutOfRangeException(nameof(df)),
        <= 30 => T975[df - 1],
        _ => 1.96,
    };

    private static readonly double[] T975 =
    [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
        2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
        2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ];

    private string Csv(string[] sources)
    {
        var sb = new StringBuilder();
        sb.AppendLine("variant,seed,learning_rate,avg_exact_match,final_heldout_loss,peak_bytes_above_baseline,wall_seconds,steps_to_target_loss,data_weighted_heldout_loss," +
                      string.Join(',', sources.Select(s => "exact_match:" + s)));
        foreach (var (variant, runs) in Groups())
            foreach (var r in runs)
                sb.AppendLine(string.Join(',', new[]
                {
                    variant.Name, r.Seed.ToString(Inv), r.LearningRate.ToString("R", Inv), r.Final.MeanAccuracy.ToString("0.####", Inv), r.Final.MeanLoss.ToString("0.####", Inv),
                    r.PeakBytesAboveBaseline.ToString(Inv), r.WallSeconds.ToString("0.##", Inv), r.StepsToLoss(targetLoss)?.ToString(Inv) ?? "",
                    r.FinalWeightedLoss?.ToString("0.####", Inv) ?? "",
                }.Concat(sources.Select(s => r.Final.Accuracy.GetValueOrDefault(s).ToString("0.####", Inv)))));
        return sb.ToString();
    }

    private static string WeightedLoss(QualityResult[] runs) =>
        runs.All(r => r.FinalWeightedLoss is not null) ? MeanStd(runs.Select(r => r.FinalWeightedLoss!.Value), "0.000") : "n/a";

    private static string MeanStd(IEnumerable<double> values, string format)
    {
        var xs = values.ToArray();
        double mean = xs.Average();
        double std = xs.Length > 1 ? Math.Sqrt(xs.Sum(x => (x - mean) * (x - mean)) / (xs.Length - 1)) : 0;
        return $"{mean.ToString(format, Inv)} +- {std.ToString(format, Inv)}";
    }
}
