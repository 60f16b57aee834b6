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
    public void The_simd_distance_matrix_matches_a_scalar_reference_for_plain_and_aligned_rows(int n, int dims)
    {
        float[] features = TestPools.Gaussian(n * dims, n + dims);
        var distances = new float[n * n];
        var aligned = new float[n * n];
        FeatureRows rows = FeatureRows.From(features, n, dims);

        L1Distances.Compute(features, n, dims, distances);
        L1Distances.Compute(rows.Data, rows.Start, rows.Stride, n, dims, aligned);

        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double expected = 0;
                for (int d = 0; d < dims; d++) expected += Math.Abs(features[i * dims + d] - features[j * dims + d]);
                Assert.Equal(expected, distances[i * n + j], 1e-4 * Math.Max(1, expected));
                Assert.Equal(distances[i * n + j], distances[j * n + i]);
                Assert.Equal(expected, aligned[i * n + j], 1e-4 * Math.Max(1, expected));
            }
        }
    }

    [Fact]
    public void Facility_location_on_a_full_pool_of_512_with_2560_dims_is_fast()
    {
        const int n = 512, dims = 2560;
        float[] features = TestPools.Gaussian(n * dims, 3);
        var scratch = new float[n * n];
        FeatureRows rows = FeatureRows.From(features, n, dims);
        FacilityLocation.LazyGreedy(rows, n, 256, scratch); // warm up the JIT

        var watch = System.Diagnostics.Stopwatch.StartNew();
        int[] picks = FacilityLocation.LazyGreedy(rows, n, 256, scratch);
        watch.Stop();

        Assert.Equal(256, picks.Distinct().Count());
        // The target is well under 20 ms on two cores; the bound here is loose so a busy CI machine
        // does not fail it, while an accidental O(n^2 h) per pick or a scalar kernel still would.
        Assert.True(watch.ElapsedMilliseconds < 400, $"took {watch.ElapsedMilliseconds} ms");
    }

    [Fact]
    public void Feature_rows_start_on_64_byte_boundaries_with_zero_padding()
    {
        FeatureRows rows = FeatureRows.From(TestPools.Gaussian(5 * 19, 1), 5, 19);

        Assert.Equal(32, rows.Stride);
        var handle = System.Runtime.InteropServices.GCHandle.Alloc(rows.Data, System.Runtime.InteropServices.GCHandleType.Pinned);
        long address = handle.AddrOfPinnedObject() + rows.Start * sizeof(float);
        handle.Free();
        Assert.Equal(0, address % 64);
        for (int i = 0; i < 5; i++)
            Assert.All(rows.Data.AsSpan(rows.Start + i * rows.Stride + 19, 13).ToArray(), x => Assert.Equal(0f, x));
    }
}
