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
        var args = new List<string> { "bench", "quality", "--methods", "random-b,colm-b-of-2b", "--seeds", "2", "--lr", "none", "--out", outDir, "--target-loss", "9" };
        foreach (var s in TinyRun.TinySets) args.AddRange(["--set", s]);
        args.AddRange(["--set", "colm.train.steps=4", "--set", "colm.train.eval-every=2"]);

        Assert.Equal(ColmCommand.Ok, await QualityBenchmark.RunAsync(CommandLine.Parse(args), CancellationToken.None));

        var table = File.ReadAllText(Path.Combine(outDir, QualityReport.TableFile));
        Assert.Contains("| random 8 |", table);
        Assert.Contains("| CoLM 8 of 16 |", table);
        Assert.Contains("arith.add", table);
        Assert.Contains("Final held-out loss per source", table);
        Assert.Contains("data-weighted held-out loss", table);
        var csv = File.ReadAllLines(Path.Combine(outDir, QualityReport.CsvFile));
        Assert.Equal(5, csv.Length);
        Assert.All(csv.Skip(1), row => Assert.Equal("0", row.Split(',')[7])); // target loss 9 is met at step 0
        // The data-weighted loss weighs each source's loss by its train share: between the best and worst source.
        Assert.Equal("data_weighted_heldout_loss", csv[0].Split(',')[8]);
        foreach (var run in Directory.GetFiles(Path.Combine(outDir, "runs"), "quality.json", SearchOption.AllDirectories)
                     .Select(f => global::System.Text.Json.JsonSerializer.Deserialize<QualityResult>(File.ReadAllText(f))!))
        {
            Assert.Equal(1.0, run.TrainShare!.Values.Sum(), 9);
            Assert.InRange(run.FinalWeightedLoss!.Value, run.Final.Loss!.Values.Min(), run.Final.Loss!.Values.Max());
        }
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

    [Fact]
    public async Task A_learning_rate_grid_reports_each_arm_at_its_best_rate_and_paired_differences_against_the_references()
    {
        string outDir = Path.Combine(_tiny.Root, "tuned");
        var args = new List<string> { "bench", "quality", "--methods", "random-2b,sbr-b", "--seeds", "2", "--lr", "0.01,0.03", "--out", outDir };
        args.AddRange(TinyRun.SetArgs([.. TinyRun.TinySets, "colm.train.steps=3"]));

        Assert.Equal(ColmCommand.Ok, await QualityBenchmark.RunAsync(CommandLine.Parse(args), CancellationToken.None));

        Assert.True(File.Exists(Path.Combine(outDir, "runs", "sbr-b-lr0.03-seed2", "quality.json")));
        var table = File.ReadAllText(Path.Combine(outDir, QualityReport.TableFile));
        Assert.Contains("each arm at its best learning rate", table);
        Assert.Contains("Paired difference against random 16", table);
        Assert.Contains("| source-balanced random 8 of 16 | 2 |", table);
        Assert.Contains("Per source: final held-out loss minus random 16's", table);
        Assert.Contains("Learning rates tried per arm", table);
        Assert.Equal(2, table.Split("(best)").Length - 1); // one best rate per arm
        // The CSV holds the reported runs: 2 arms x 2 seeds, each at one rate of the grid.
        var rates = File.ReadAllLines(Path.Combine(outDir, QualityReport.CsvFile)).Skip(1).Select(r => r.Split(',')[2]).ToArray();
        Assert.Equal(4, rates.Length);
        Assert.All(rates, r => Assert.Contains(r, new[] { "0.01", "0.03" }));
    }

    [Fact]
    public void A_paired_interval_uses_students_t_and_marks_one_that_excludes_zero()
    {
        // mean 2, sd 1, n 3: half width t(2) / sqrt(3) = 4.303 / 1.732 = 2.484.
        Assert.Equal("2.000 [-0.484, 4.484]", QualityReport.Interval([1, 2, 3], "0.000"));
        Assert.Equal("1.000 [0.752, 1.248] *", QualityReport.Interval([0.9, 1.0, 1.1], "0.000"));
        Assert.Equal(12.706, QualityReport.StudentT975(1));
        Assert.Equal(1.96, QualityReport.StudentT975(100));
    }

    [Fact]
    public async Task A_learning_rate_grid_that_is_not_numbers_is_refused()
    {
        var o = await ColmProcess.RunAsync(_tiny.Root, "bench", "quality", "--lr", "fast");

        Assert.Equal(2, o.ExitCode);
        Assert.Contains("--lr: expected positive numbers separated by commas, got 'fast'", o.Stderr);
    }
}
