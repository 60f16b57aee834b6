namespace CoLM.Cli.Quality;

/// <summary>Held-out loss against step and against wall time, one line per variant (mean over seeds).</summary>
public static class QualityPlots
{
    public static void Write(string byStepPath, string byTimePath, IReadOnlyList<QualityVariant> variants, IReadOnlyList<QualityResult> results)
    {
        Plot(byStepPath, "step", variants, results, e => e.Step);
        Plot(byTimePath, "wall time (s)", variants, results, e => e.ElapsedSeconds);
    }

    private static void Plot(string path, string xLabel, IReadOnlyList<QualityVariant> variants, IReadOnlyList<QualityResult> results,
        Func<EvalPoint, double> x)
    {
        var plot = new ScottPlot.Plot();
        var palette = new ScottPlot.Palettes.Category10();
        int i = 0;
        foreach (var variant in variants)
        {
            var runs = results.Where(r => r.Variant == variant.Name).ToArray();
            if (runs.Length == 0) continue;
            // Runs of one variant evaluate at the same steps; average them point by point.
            int points = runs.Min(r => r.Evals.Count);
            var xs = Enumerable.Range(0, points).Select(p => runs.Average(r => x(r.Evals[p]))).ToArray();
            var ys = Enumerable.Range(0, points).Select(p => runs.Average(r => r.Evals[p].MeanLoss)).ToArray();
            var line = plot.Add.Scatter(xs, ys);
            line.LegendText = variant.Description;
            line.Color = palette.GetColor(i++);
            line.LineWidth = 2;
            if (variant.Name.StartsWith("colm", StringComparison.Ordinal)) line.LineWidth = 3;
        }
        plot.XLabel(xLabel);
        plot.YLabel("held-out loss (mean over sources)");
        plot.Title("CoLM vs baselines: held-out loss");
        plot.ShowLegend(ScottPlot.Alignment.UpperRight);
        plot.SavePng(path, 1000, 650);
    }
}
