using Xunit;

namespace CoLM.Selection.Tests;

public class FacilityLocationTests
{
    public static TheoryData<int, int, int, int> RandomSizes => new()
    {
        { 5, 3, 2, 1 },
        { 17, 7, 5, 2 },
        { 64, 16, 20, 3 },
        { 130, 33, 65, 4 },
        { 200, 9, 200, 5 },
    };

    [Theory]
    [MemberData(nameof(RandomSizes))]
    public void Lazy_greedy_picks_the_same_rows_in_the_same_order_as_plain_greedy(int n, int dims, int k, int seed)
    {
        float[] features = TestPools.Gaussian(n * dims, seed);

        int[] lazy = FacilityLocation.LazyGreedy(features, n, dims, k);
        int[] plain = FacilityLocation.Greedy(features, n, dims, k);

        Assert.Equal(plain, lazy);
        Assert.Equal(
            FacilityLocation.Objective(features, n, dims, plain),
            FacilityLocation.Objective(features, n, dims, lazy));
    }

    [Fact]
    public void Lazy_greedy_matches_plain_greedy_when_many_gains_tie()
    {
        // Points on a coarse integer grid with duplicates: many exactly equal gains.
        var rng = new Random(9);
        for (int trial = 0; trial < 20; trial++)
        {
            int n = rng.Next(2, 60), dims = rng.Next(1, 4), k = rng.Next(1, n + 1);
            float[] features = Enumerable.Range(0, n * dims).Select(_ => (float)rng.Next(3)).ToArray();

            Assert.Equal(FacilityLocation.Greedy(features, n, dims, k), FacilityLocation.LazyGreedy(features, n, dims, k));
        }
    }

    [Fact]
    public void Greedy_on_tiny_sets_reaches_the_one_minus_one_over_e_guarantee_and_is_optimal_for_one_pick()
    {
        var rng = new Random(5);
        for (int trial = 0; trial < 60; trial++)
        {
            int n = rng.Next(1, 9), dims = rng.Next(1, 5), k = rng.Next(1, Math.Min(3, n) + 1);
            float[] features = TestPools.Gaussian(n * dims, 100 + trial);

            double optimum = Subsets(n, k).Max(s => FacilityLocation.Objective(features, n, dims, s));
            double greedy = FacilityLocation.Objective(features, n, dims, FacilityLocation.LazyGreedy(features, n, dims, k));

            double tolerance = 1e-5 * Math.Max(1, optimum);
            Assert.True(greedy >= (1 - 1 / Math.E) * optimum - tolerance, $"greedy {greedy} < (1-1/e) x optimum {optimum}");
            Assert.True(greedy <= optimum + tolerance);
            if (k == 1) Assert.Equal(optimum, greedy, tolerance);
        }
    }

    [Fact]
    public void One_representative_per_cluster_is_chosen_when_the_budget_equals_the_cluster_count()
    {
        // Three tight clusters far apart; rows interleaved so order does not help.
        const int dims = 4;
        var centres = new[] { 0f, 50f, -80f };
        var noise = TestPools.Gaussian(30 * dims, 21, 0.1f);
        float[] features = new float[30 * dims];
        for (int i = 0; i < 30; i++)
            for (int d = 0; d < dims; d++) features[i * dims + d] = centres[i % 3] + noise[i * dims + d];

        int[] picks = FacilityLocation.LazyGreedy(features, 30, dims, 3);

        Assert.Equal([0, 1, 2], picks.Select(p => p % 3).Order());
    }

    [Fact]
    public void The_objective_is_zero_for_no_selection_and_grows_with_the_selection()
    {
        float[] features = TestPools.Gaussian(40 * 6, 8);
        int[] order = FacilityLocation.Greedy(features, 40, 6, 40);

        Assert.Equal(0, FacilityLocation.Objective(features, 40, 6, []));
        double previous = 0;
        for (int k = 1; k <= 40; k++)
        {
            double value = FacilityLocation.Objective(features, 40, 6, order.AsSpan(0, k));
            Assert.True(value >= previous);
            previous = value;
        }
    }

    [Fact]
    public void Identical_rows_still_yield_exactly_k_distinct_picks()
    {
        float[] features = Enumerable.Repeat(1.5f, 10 * 3).ToArray();

        int[] picks = FacilityLocation.LazyGreedy(features, 10, 3, 4);

        Assert.Equal([0, 1, 2, 3], picks);
    }

    [Fact]
    public void Asking_for_more_rows_than_exist_is_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => FacilityLocation.LazyGreedy(new float[6], 3, 2, 4));
        Assert.Throws<ArgumentException>(() => FacilityLocation.Greedy(new float[5], 3, 2, 1));
    }

    private static IEnumerable<int[]> Subsets(int n, int k)
    {
        for (int mask = 1; mask < 1 << n; mask++)
        {
            if (int.PopCount(mask) != k) continue;
            yield return Enumerable.Range(0, n).Where(i => (mask >> i & 1) == 1).ToArray();
        }
    }
}
