using Xunit;

namespace CoLM.Selection.Tests;

public class BudgetAllocatorTests
{
    private static int[] Pool(params int[] countsPerSource) =>
        countsPerSource.SelectMany((count, q) => Enumerable.Repeat(q, count)).ToArray();

    [Fact]
    public void When_small_sources_alone_exceed_the_budget_a_seeded_random_budget_of_them_is_kept_and_nothing_else()
    {
        int[] pool = Pool(6, 20, 5); // sources 0 and 2 small: 11 small examples
        bool[] small = [true, false, true];

        BudgetAllocation a = BudgetAllocator.Allocate(pool, small, 8, rngSeed: 3);

        Assert.Equal(8, a.KeptIndices.Length);
        Assert.Equal(8, a.KeptIndices.Distinct().Count());
        Assert.All(a.KeptIndices, i => Assert.True(small[pool[i]]));
        Assert.All(a.PerSourceBudget, b => Assert.Equal(0, b));
        Assert.Equal(a.KeptIndices, BudgetAllocator.Allocate(pool, small, 8, rngSeed: 3).KeptIndices);
        bool anyDiffers = Enumerable.Range(4, 20)
            .Any(seed => !BudgetAllocator.Allocate(pool, small, 8, seed).KeptIndices.SequenceEqual(a.KeptIndices));
        Assert.True(anyDiffers, "different seeds should pick different kept subsets");
    }

    [Fact]
    public void Kept_examples_sampling_is_roughly_uniform_over_the_small_pool_examples()
    {
        int[] pool = Pool(10, 5);
        bool[] small = [true, false];
        var hits = new int[10];
        for (int seed = 0; seed < 2000; seed++)
            foreach (int i in BudgetAllocator.Allocate(pool, small, 3, seed).KeptIndices) hits[i]++;

        // Each small example is kept with probability 3/10: 600 of 2000 expected, sd about 20.
        Assert.All(hits, h => Assert.InRange(h, 500, 700));
    }

    [Fact]
    public void Proportional_floors_leave_a_remainder_that_goes_to_the_smallest_allocation()
    {
        int[] pool = Pool(5, 3, 2);

        BudgetAllocation a = BudgetAllocator.Allocate(pool, [false, false, false], 7, rngSeed: 0);

        // Floors 3.5 -> 3, 2.1 -> 2, 1.4 -> 1; the one left over goes to source 2, the smallest.
        Assert.Equal([3, 2, 2], a.PerSourceBudget);
        Assert.Empty(a.KeptIndices);
    }

    [Fact]
    public void Remainder_ties_go_to_the_lower_source_id()
    {
        int[] pool = Pool(3, 3, 3);

        BudgetAllocation a = BudgetAllocator.Allocate(pool, [false, false, false], 5, rngSeed: 0);

        Assert.Equal([2, 2, 1], a.PerSourceBudget);
    }

    [Fact]
    public void A_source_with_fewer_pool_examples_than_its_remainder_share_is_capped_and_the_rest_moves_on()
    {
        int[] pool = Pool(1, 1, 50, 50);

        BudgetAllocation a = BudgetAllocator.Allocate(pool, [false, false, false, false], 101, rngSeed: 0);

        // Floors 0, 0, 49, 49; remainder 3: one each to the single-example sources, which are then
        // full, and the last to source 2.
        Assert.Equal([1, 1, 50, 49], a.PerSourceBudget);
    }

    [Fact]
    public void Small_sources_are_kept_whole_and_only_the_rest_of_the_budget_is_split()
    {
        int[] pool = Pool(4, 10, 2, 6);
        bool[] small = [true, false, true, false];

        BudgetAllocation a = BudgetAllocator.Allocate(pool, small, 14, rngSeed: 0);

        Assert.Equal(6, a.KeptIndices.Length);
        Assert.Equal(Enumerable.Range(0, pool.Length).Where(i => small[pool[i]]), a.KeptIndices);
        Assert.Equal([0, 5, 0, 3], a.PerSourceBudget);
    }

    [Fact]
    public void A_budget_above_the_pool_size_gives_every_example()
    {
        int[] pool = Pool(2, 7, 3);

        BudgetAllocation a = BudgetAllocator.Allocate(pool, [true, false, false], 100, rngSeed: 0);

        Assert.Equal(2, a.KeptIndices.Length);
        Assert.Equal([0, 7, 3], a.PerSourceBudget);
    }

    [Fact]
    public void Source_ids_beyond_the_small_source_mask_count_as_large()
    {
        BudgetAllocation a = BudgetAllocator.Allocate([0, 3, 3, 3], [true], 3, rngSeed: 0);

        Assert.Equal([0], a.KeptIndices);
        Assert.Equal(4, a.PerSourceBudget.Length);
        Assert.Equal(2, a.PerSourceBudget[3]);
    }

    [Fact]
    public void Budgets_plus_kept_always_equal_the_smaller_of_budget_and_pool_and_never_exceed_a_source()
    {
        var rng = new Random(11);
        for (int trial = 0; trial < 500; trial++)
        {
            int sources = rng.Next(1, 9);
            int[] pool = Enumerable.Range(0, rng.Next(0, 80)).Select(_ => rng.Next(sources)).ToArray();
            bool[] small = Enumerable.Range(0, sources).Select(_ => rng.Next(3) == 0).ToArray();
            int budget = rng.Next(0, 100);

            BudgetAllocation a = BudgetAllocator.Allocate(pool, small, budget, trial);

            Assert.Equal(Math.Min(budget, pool.Length), a.KeptIndices.Length + a.PerSourceBudget.Sum());
            Assert.Equal(a.KeptIndices.Length, a.KeptIndices.Distinct().Count());
            Assert.All(a.KeptIndices, i => Assert.True(small[pool[i]]));
            int smallInPool = pool.Count(s => small[s]);
            if (smallInPool <= budget) Assert.Equal(smallInPool, a.KeptIndices.Length);
            for (int q = 0; q < sources; q++)
            {
                Assert.InRange(a.PerSourceBudget[q], 0, pool.Count(s => s == q));
                if (small[q]) Assert.Equal(0, a.PerSourceBudget[q]);
            }
        }
    }

    [Fact]
    public void A_negative_budget_is_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => BudgetAllocator.Allocate([0], [false], -1, 0));
    }
}
