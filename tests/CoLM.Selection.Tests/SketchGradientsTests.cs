using Xunit;

namespace CoLM.Selection.Tests;

public class SketchGradientsTests
{
    [Theory]
    [InlineData(1, 16)]
    [InlineData(3, 37)]
    [InlineData(8, 2048)]
    [InlineData(5, 2100)]
    public void The_rebuilt_gradient_is_the_probe_average_weighted_by_the_coefficients(int probes, int dim)
    {
        float[] basis = new ProbeBasis().Get(seed: 99, probes, dim);
        float[] coefs = TestPools.Gaussian(probes, probes + dim);
        var directions = new float[probes][];
        for (int k = 0; k < probes; k++) ProbeDirections.Fill(99, k, directions[k] = new float[dim]);
        var g = new float[dim];

        bool bad = SketchGradients.Rebuild(coefs, basis, 0, g);

        Assert.False(bad);
        for (int d = 0; d < dim; d++)
        {
            double expected = 0;
            for (int k = 0; k < probes; k++) expected += coefs[k] * directions[k][d];
            expected /= probes;
            Assert.Equal(expected, g[d], 1e-5);
        }
    }

    [Fact]
    public void Four_rows_at_once_give_bit_identical_values_to_one_row_at_a_time()
    {
        const int probes = 7, dim = 1000;
        float[] basis = new ProbeBasis().Get(seed: 3, probes, dim);
        float[] coefs = TestPools.Gaussian(4 * probes, 12);
        var four = Enumerable.Range(0, 4).Select(_ => new float[dim - 16]).ToArray();
        var bad = new bool[4];

        SketchGradients.Rebuild4(
            coefs.AsSpan(0, probes), coefs.AsSpan(probes, probes), coefs.AsSpan(2 * probes, probes), coefs.AsSpan(3 * probes, probes),
            basis, 16, four[0], four[1], four[2], four[3], bad);

        for (int r = 0; r < 4; r++)
        {
            var one = new float[dim - 16];
            SketchGradients.Rebuild(coefs.AsSpan(r * probes, probes), basis, 16, one);
            Assert.Equal(one, four[r]);
            Assert.False(bad[r]);
        }
    }

    [Fact]
    public void Overflowing_coefficients_are_zeroed_and_reported()
    {
        float[] basis = new ProbeBasis().Get(seed: 1, 2, 64);
        var g = new float[64];

        bool bad = SketchGradients.Rebuild([3e38f, 3e38f], basis, 0, g);

        Assert.True(bad);
        Assert.All(g, x => Assert.True(float.IsFinite(x)));
    }

    [Fact]
    public void Sanitizing_marks_non_finite_and_all_zero_rows_and_keeps_the_rest()
    {
        float[] coefs = [1, 2, float.NaN, 4, 0, 0, 5, float.PositiveInfinity];
        var degenerate = new bool[4];

        float[] clean = SketchGradients.Sanitize(coefs, 4, 2, degenerate);

        Assert.Equal([false, true, true, true], degenerate);
        Assert.Equal([1, 2, 0, 4, 0, 0, 5, 0], clean);
        Assert.True(float.IsNaN(coefs[2])); // the pool's own array is left alone
    }
}
