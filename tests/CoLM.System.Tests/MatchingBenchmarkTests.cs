using System.Globalization;

namespace CoLM.System.Tests;

/// <summary>`colm bench matching` end to end on the tiny model: a real run, then matching errors at each checkpoint.</summary>
public sealed class MatchingBenchmarkTests : IDisposable
{
    private readonly TinyRun _tiny = new();

    public void Dispose() => _tiny.Dispose();

    [Fact]
    public async Task Matching_errors_are_reported_for_each_method_at_step_0_and_every_checkpoint_and_big_batch_matches_exactly()
    {
        string outDir = Path.Combine(_tiny.Root, "matching");
        var o = await ColmProcess.RunAsync(_tiny.Root, ["bench", "matching", "--quiet", "--every", "2", "--pools", "3", "--out", outDir,
            .. TinyRun.SetArgs([.. TinyRun.TinySets, "colm.train.steps=4"])]);

        Assert.True(o.ExitCode == 0, o.Stderr);
        var csv = File.ReadAllLines(Path.Combine(outDir, "matching.csv")).Skip(1).Select(l => l.Split(',')).ToArray();
        // Steps 0, 2, 4 x 3 pools x 4 methods.
        Assert.Equal(3 * 3 * 4, csv.Length);
        Assert.Equal(["0", "2", "4"], csv.Select(r => r[0]).Distinct());
        Assert.Equal(["colm", "source-balanced-random", "random", "big-batch"], csv.Select(r => r[2]).Distinct());
        foreach (var r in csv)
        {
            double whole = double.Parse(r[4], CultureInfo.InvariantCulture), sketch = double.Parse(r[5], CultureInfo.InvariantCulture);
            if (r[2] == "big-batch")
            {
                // The whole pool's gradient, taken the same way twice: exactly equal.
                Assert.Equal(0.0, whole);
                Assert.Equal(0.0, sketch);
                Assert.Equal("16", r[3]);
            }
            else
            {
                Assert.InRange(whole, 1e-6, 10);
                Assert.InRange(sketch, 1e-6, 10);
                Assert.Equal("8", r[3]);
            }
        }
        var report = File.ReadAllText(Path.Combine(outDir, "matching.md"));
        Assert.Contains("Paired difference colm - source-balanced-random", report);
        Assert.Contains("| 4 | big-batch | 16 | 0.000 +- 0.000 | 0.000 +- 0.000 |", report);
        Assert.All(csv, r => Assert.InRange(double.Parse(r[6], CultureInfo.InvariantCulture), 0, 1));
        // Alignment with the held-out loss's gradient: a cosine, the same for every method's whole-pool (big-batch) row of a pool and step.
        Assert.All(csv, r => Assert.InRange(double.Parse(r[7], CultureInfo.InvariantCulture), -1, 1));
        Assert.Contains("held-out alignment", report);
        Assert.Contains("\"completed\"", File.ReadAllText(Path.Combine(outDir, "trained", "status.json")));
    }

    [Fact]
    public async Task A_pool_count_that_is_not_a_positive_number_is_refused_with_exit_2()
    {
        var o = await ColmProcess.RunAsync(_tiny.Root, "bench", "matching", "--pools", "zero");

        Assert.Equal(2, o.ExitCode);
        Assert.Contains("--pools must be a positive whole number, got 'zero'", o.Stderr);
    }
}
