using CoLM.Cli;
using CoLM.Cli.Quality;

namespace CoLM.System.Tests;

public sealed class QualityBenchmarkTests : IDisposable
{
    private readonly TinyRun _tiny = new();

    public void Dispose() => _tiny.Dispose();

    [Fact]
    public async Task The_quality_comparison_on_a_tiny_configuration_writes_its_table_and_plots_and_resumes()
    {
        string outDir = Path.Combine(_tiny.Root, "quality");
        var args = new List<string> { "bench", "quality", "--methods", "random-b,colm-b-of-2b", "--seeds", "2", "--out", outDir, "--target-loss", "9" };
        foreach (var s in TinyRun.TinySets) args.AddRange(["--set", s]);
        args.AddRange(["--set", "colm.train.steps=4", "--set", "colm.train.eval-every=2"]);

        Assert.Equal(ColmCommand.Ok, await QualityBenchmark.RunAsync(CommandLine.Parse(args), CancellationToken.None));

        var table = File.ReadAllText(Path.Combine(outDir, QualityReport.TableFile));
        Assert.Contains("| random 8 |", table);
        Assert.Contains("| CoLM 8 of 16 |", table);
        Assert.Contains("arith.add", table);
        var csv = File.ReadAllLines(Path.Combine(outDir, QualityReport.CsvFile));
        Assert.Equal(5, csv.Length);
        Assert.All(csv.Skip(1), row => Assert.Equal("0", row.Split(',')[6])); // target loss 9 is met at step 0
        foreach (var plot in new[] { QualityReport.LossByStepPlot, QualityReport.LossByTimePlot })
        {
            var png = File.ReadAllBytes(Path.Combine(outDir, plot));
            Assert.True(png.Length > 1000);
            Assert.Equal(0x89, png[0]); // PNG signature
        }

        // Resume: only the run without a saved result is trained again.
        var kept = Path.Combine(outDir, "runs", "random-b-seed1", "quality.json");
        var redo = Path.Combine(outDir, "runs", "colm-b-of-2b-seed2", "quality.json");
        var keptTime = File.GetLastWriteTimeUtc(kept);
        File.Delete(redo);
        Assert.Equal(ColmCommand.Ok, await QualityBenchmark.RunAsync(CommandLine.Parse(args), CancellationToken.None));
        Assert.Equal(keptTime, File.GetLastWriteTimeUtc(kept));
        Assert.True(File.Exists(redo));
    }
}
