using Xunit;

namespace CoLM.Selection.Tests;

public class TopDimsTests
{
    [Theory]
    [InlineData(1, 1, false)]
    [InlineData(10, 3, false)]
    [InlineData(1000, 37, false)]
    [InlineData(1000, 1000, false)]
    [InlineData(500, 60, true)]
    [InlineData(64, 1, true)]
    public void Top_h_dims_match_a_full_sort_by_magnitude_with_ties_to_lower_index(int dim, int h, bool manyTies)
    {
        var rng = new Random(dim * 31 + h);
        float[] values = manyTies
            ? Enumerable.Range(0, dim).Select(_ => (float)(rng.Next(5) - 2)).ToArray()
            : TestPools.Gaussian(dim, dim + h);
        var mask = new int[h];

        TopDims.Select(values, h, new float[dim], mask);

        int[] expected = Enumerable.Range(0, dim)
            .OrderByDescending(d => Math.Abs(values[d])).ThenBy(d => d)
            .Take(h).Order().ToArray();
        Assert.Equal(expected, mask);
    }

    [Fact]
    public void All_zero_values_take_the_first_h_dims()
    {
        var mask = new int[4];
        TopDims.Select(new float[9], 4, new float[9], mask);
        Assert.Equal([0, 1, 2, 3], mask);
    }
}
