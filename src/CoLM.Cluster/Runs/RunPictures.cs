using System.Text.Json;

namespace CoLM.Cluster.Runs;

/// <summary>
/// The pictures next to a finished run's report.md: loss.png (train loss per step, with the mean
/// held-out loss at each evaluation) and sources.png (held-out exact match and loss per source,
/// before and after training), drawn with ScottPlot from the run's own metrics.jsonl rows.
/// </summary>
public static class RunPictures
{
    public const string LossFile = "loss.png";
    public const string SourcesFile = "sources.png";

    /// <summary>Writes the pictures it has data for; returns the file names written (the report links those).</summary>
    public static IReadOnlyList<string> Write(RunDirectory run, EvalReport? before, EvalReport? after)
    {
        var written = new List<string>();
        var (steps, losses, evalSteps, evalLosses) = ReadCurves(run.MetricsFile);
        if (steps.Count > 0)
        {
            var plot = new ScottPlot.Plot();
            var train = plot.Add.Scatter(steps.ToArray(), losses.ToArray());
            train.LegendText = "train loss (coreset, per step)";
            train.MarkerSize = 0;
            train.LineWidth = 1;
            if (evalSteps.Count > 0)
            {
                var heldout = plot.Add.Scatter(evalSteps.ToArray(), evalLosses.ToArray());
                heldout.LegendText = "held-out loss (mean over sources)";
                heldout.LineWidth = 2;
                heldout.MarkerSize = 6;
            }
            plot.XLabel("step");
            plot.YLabel("loss (nats per token)");
            plot.Title("Loss");
            plot.ShowLegend(ScottPlot.Alignment.UpperRight);
            Save(plot, Path.Combine(run.Path, LossFile), 1000, 560);
            written.Add(LossFile);
        }
        if (before is not null && after is not null)
        {
            var sources = after.Sources.Keys.Union(before.Sources.Keys).Order(StringComparer.Ordinal).ToArray();
            var plot = new ScottPlot.Plot();
            var palette = new ScottPlot.Palettes.Category10();
            var bars = new List<ScottPlot.Bar>();
            for (int i = 0; i < sources.Length; i++)
            {
                double b = before.Sources.GetValueOrDefault(sources[i])?.Loss ?? 0, a = after.Sources.GetValueOrDefault(sources[i])?.Loss ?? 0;
                bars.Add(new ScottPlot.Bar { Position = 3 * i, Value = b, FillColor = palette.GetColor(0) });
                bars.Add(new ScottPlot.Bar { Position = 3 * i + 1, Value = a, FillColor = palette.GetColor(1) });
            }
            plot.Add.Bars(bars);
            plot.Axes.Bottom.SetTicks([.. sources.Select((_, i) => 3.0 * i + 0.5)], sources);
            plot.Axes.Bottom.TickLabelStyle.Rotation = 45;
            plot.Axes.Bottom.TickLabelStyle.Alignment = ScottPlot.Alignment.MiddleLeft;
            // Room for the longest source name, written at 45 degrees.
            plot.Axes.Bottom.MinimumSize = 20 + 6 * sources.Max(s => s.Length);
            plot.Axes.Margins(bottom: 0, top: 0.15);
            plot.YLabel("held-out loss");
            plot.Title($"Held-out loss per source: before (step {before.Step}) and after (step {after.Step})");
            plot.Legend.IsVisible = true;
            plot.Legend.Alignment = ScottPlot.Alignment.UpperRight;
            plot.Legend.ManualItems.Add(new ScottPlot.LegendItem { LabelText = "before", FillColor = palette.GetColor(0) });
            plot.Legend.ManualItems.Add(new ScottPlot.LegendItem { LabelText = "after", FillColor = palette.GetColor(1) });
            Save(plot, Path.Combine(run.Path, SourcesFile), Math.Max(800, 90 * sources.Length), 600);
            written.Add(SourcesFile);
        }
        return written;
    }

    private static void Save(ScottPlot.Plot plot, string path, int width, int height)
    {
        var tmp = path + ".partial.png";
        plot.SavePng(tmp, width, height);
        File.Move(tmp, path, overwrite: true);
    }

    private static (List<double> Steps, List<double> Losses, List<double> EvalSteps, List<double> EvalLosses) ReadCurves(string metrics)
    {
        var curves = (new List<double>(), new List<double>(), new List<double>(), new List<double>());
        if (!File.Exists(metrics)) return curves;
        foreach (var line in File.ReadLines(metrics))
        {
            if (line.Length == 0) continue;
            try
            {
                using var doc = JsonDocument.Parse(line);
                var row = doc.RootElement;
                string kind = row.GetProperty("kind").GetString() ?? "";
                if (kind == "step" && row.GetProperty("loss").ValueKind == JsonValueKind.Number)
                {
                    curves.Item1.Add(row.GetProperty("step").GetInt64());
                    curves.Item2.Add(row.GetProperty("loss").GetDouble());
                }
                else if (kind == "eval")
                {
                    curves.Item3.Add(row.GetProperty("step").GetInt64());
                    curves.Item4.Add(row.GetProperty("meanLoss").GetDouble());
                }
            }
            catch (JsonException)
            {
                // A torn last line (a process killed mid-append) is not part of the picture.
            }
        }
        return curves;
    }
}
