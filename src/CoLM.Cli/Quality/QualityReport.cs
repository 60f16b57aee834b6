using System.Globalization;
using System.Text;
using CoLM.Training.Settings;

namespace CoLM.Cli.Quality;

/// <summary>The comparison table (markdown + CSV) and the loss plots of a quality benchmark.</summary>
public sealed class QualityReport(IReadOnlyList<QualityVariant> variants, IReadOnlyList<QualityResult> results, double targetLoss, ColmSettings settings)
{
    public const string TableFile = "quality.md", CsvFile = "quality.csv", LossByStepPlot = "loss-by-step.png", LossByTimePlot = "loss-by-time.png";

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

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
        sb.AppendLine($"{settings.Train.Steps} steps, learning rate {settings.Train.LearningRate.ToString(Inv)}, {settings.Train.Trainers} trainers, " +
                      $"{seeds} seeds (mean +- std); held-out exact match in %; steps to loss = first evaluation (every {settings.Train.EvalEvery} steps) at or below {targetLoss.ToString(Inv)}.");
        sb.AppendLine();
        sb.AppendLine("| variant | avg exact match | final held-out loss | peak memory above baseline (MiB) | wall time (s) | steps to loss | " +
                      string.Join(" | ", sources) + " |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|" + string.Concat(sources.Select(_ => "---:|")));
        foreach (var (variant, runs) in Groups())
        {
            var steps = runs.Select(r => r.StepsToLoss(targetLoss)).ToArray();
            string reached = steps.All(s => s is not null)
                ? MeanStd(steps.Select(s => (double)s!.Value), "0")
                : $"{steps.Count(s => s is not null)}/{runs.Length} reached";
            sb.Append($"| {variant.Description} | {MeanStd(runs.Select(r => 100 * r.Final.MeanAccuracy), "0.0")} | ");
            sb.Append($"{MeanStd(runs.Select(r => r.Final.MeanLoss), "0.000")} | {MeanStd(runs.Select(r => r.PeakBytesAboveBaseline / 1048576.0), "0")} | ");
            sb.Append($"{MeanStd(runs.Select(r => r.WallSeconds), "0")} | {reached} | ");
            sb.AppendLine(string.Join(" | ", sources.Select(s => MeanStd(runs.Select(r => 100 * r.Final.Accuracy.GetValueOrDefault(s)), "0.0"))) + " |");
        }
        return sb.ToString();
    }

    private string Csv(string[] sources)
    {
        var sb = new StringBuilder();
        sb.AppendLine("variant,seed,avg_exact_match,final_heldout_loss,peak_bytes_above_baseline,wall_seconds,steps_to_target_loss," +
                      string.Join(',', sources.Select(s => "exact_match:" + s)));
        foreach (var (variant, runs) in Groups())
            foreach (var r in runs)
                sb.AppendLine(string.Join(',', new[]
                {
                    variant.Name, r.Seed.ToString(Inv), r.Final.MeanAccuracy.ToString("0.####", Inv), r.Final.MeanLoss.ToString("0.####", Inv),
                    r.PeakBytesAboveBaseline.ToString(Inv), r.WallSeconds.ToString("0.##", Inv), r.StepsToLoss(targetLoss)?.ToString(Inv) ?? "",
                }.Concat(sources.Select(s => r.Final.Accuracy.GetValueOrDefault(s).ToString("0.####", Inv)))));
        return sb.ToString();
    }

    private static string MeanStd(IEnumerable<double> values, string format)
    {
        var xs = values.ToArray();
        double mean = xs.Average();
        double std = xs.Length > 1 ? Math.Sqrt(xs.Sum(x => (x - mean) * (x - mean)) / (xs.Length - 1)) : 0;
        return $"{mean.ToString(format, Inv)} +- {std.ToString(format, Inv)}";
    }
}
