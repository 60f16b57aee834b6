using Xunit;

namespace CoLM.Selection.Tests;

public class L1DistancesTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(6, 7)]
    [InlineData(9, 16)]
    [InlineData(13, 37)]
    [InlineData(70, 300)]
    public void The_simd_distance_matrix_matches_a_scalar_reference(int n, int dims)
    {
        float[] features = TestPools.Gaussian(n * dims, n + dims);
        var distances = new float[n * n];

        L1Distances.Compute(features, n, dims, distances);

        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double expected = 0;
                for (int d = 0; d < dims; d++) expected += Math.Abs(features[i * dims + d] - features[j * dims + d]);
                Assert.Equal(expected, distances[i * n + j], 1e-4 * Math.Max(1, expected));
                Assert.Equal(distances[i * n + j], distances[j * n + i]);
            }
        }
    }

    [Fact]
    public void Facility_location_on_a_full_pool_of_512_with_2560_dims_is_fast()
    {
        const int n = 512, dims = 2560;
        float[] features = TestPools.Gaussian(n * dims, 3);
        var scratch = new float[n * n];
        FacilityLocation.LazyGreedy(features, n, dims, 256, scratch); // warm up the JIT

        var watch = System.Diagnostics.Stopwatch.StartNew();
        int[] picks = FacilityLocation.LazyGreedy(features, n, dims, 256, scratch);
        watch.Stop();

        Assert.Equal(256, picks.Distinct().Count());
        // The target is well under 20 ms on two cores; the bound here is loose so a busy CI machine
        // does not fail it, while an accidental O(n^2 h) per pick or a scalar kernel still would.
        Assert.True(watch.ElapsedMilliseconds < 400, $"took {watch.ElapsedMilliseconds} ms");
    }
}
