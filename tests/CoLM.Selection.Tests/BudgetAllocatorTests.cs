using Xunit;

namespace CoLM.Selection.Tests;

public class BudgetAllocatorTests
{
    private static int[] Pool(params int[] countsPerSource) =>
        countsPerSource.SelectMany((count, q) => Enumerable.Repeat(q, count)).ToArray();

    private static readonly SourceBalance Quarter = SourceBalance.Default;

    [Fact]
    public void When_small_sources_would_fill_the_budget_a_quarter_of_it_stays_reserved_for_the_large_ones()
    {
        int[] pool = Pool(6, 20, 5); // sources 0 and 2 small: 11 small examples
        bool[] small = [true, false, true];

        BudgetAllocation a = BudgetAllocator.Allocate(pool, small, 8, rngSeed: 3, Quarter);

        // R = max(1 large source, ceil(0.25 * 8)) = 2, so 6 small ones are kept: one each, then the
        // 4 left in proportion to 5 and 4 beyond the first (2.2 and 1.8; the larger remainder wins).
        Assert.Equal(6, a.KeptIndices.Length);
        Assert.Equal(a.KeptIndices.Order(), a.KeptIndices);
        Assert.All(a.KeptIndices, i => Assert.True(small[pool[i]]));
        Assert.Equal(3, a.KeptIndices.Count(i => pool[i] == 0));
        Assert.Equal(3, a.KeptIndices.Count(i => pool[i] == 2));
        Assert.Equal([0, 2, 0], a.PerSourceBudget);
        Assert.Equal(5, a.SmallLeftOut);
        Assert.Equal(a.KeptIndices, BudgetAllocator.Allocate(pool, small, 8, rngSeed: 3, Quarter).KeptIndices);
        bool anyDiffers = Enumerable.Range(4, 20)
            .Any(seed => !BudgetAllocator.Allocate(pool, small, 8, seed, Quarter).KeptIndices.SequenceEqual(a.KeptIndices));
        Assert.True(anyDiffers, "different seeds should pick different kept subsets");
    }

    [Fact]
    public void Small_sources_share_the_room_in_proportion_with_at_least_one_each()
    {
        int[] pool = Pool(30, 1, 20);

        BudgetAllocation a = BudgetAllocator.Allocate(pool, [true, true, false], 16, rngSeed: 1, Quarter);

        // R = max(1, 4) = 4; room 12: the single example of source 1, and 11 of source 0's 30.
        Assert.Equal(11, a.KeptIndices.Count(i => pool[i] == 0));
        Assert.Equal(1, a.KeptIndices.Count(i => pool[i] == 1));
        Assert.Equal([0, 0, 4], a.PerSourceBudget);
        Assert.Equal(19, a.SmallLeftOut);
    }

    [Fact]
    public void With_more_small_sources_than_room_each_kept_example_comes_from_a_different_source()
    {
        int[] pool = Pool(2, 2, 2, 2, 2, 10);
        bool[] small = [true, true, true, true, true, false];

        BudgetAllocation a = BudgetAllocator.Allocate(pool, small, 4, rngSeed: 5, Quarter);

        // R = max(1, 1) = 1: room for 3 small examples, one from each of 3 of the 5 sources.
        Assert.Equal(3, a.KeptIndices.Length);
        Assert.Equal(3, a.KeptIndices.Select(i => pool[i]).Distinct().Count());
        Assert.Equal(1, a.PerSourceBudget[5]);
    }

    [Fact]
    public void A_reserve_of_zero_still_leaves_one_slot_per_large_source_in_the_pool()
    {
        int[] pool = Pool(20, 5, 5);

        BudgetAllocation a = BudgetAllocator.Allocate(pool, [true, false, false], 8, rngSeed: 0, new SourceBalance(true, 0));

        Assert.Equal(6, a.KeptIndices.Length);
        Assert.Equal([0, 1, 1], a.PerSourceBudget);
    }

    [Fact]
    public void A_pool_without_large_examples_reserves_nothing()
    {
        BudgetAllocation a = BudgetAllocator.Allocate(Pool(10), [true], 4, rngSeed: 0, Quarter);

        Assert.Equal(4, a.KeptIndices.Length);
        Assert.Equal(6, a.SmallLeftOut);
    }

    [Theory]
    [InlineData(0.1, 30, 1, 100, 3)]   // 0.1 * 30 is 3.0000000000000004 in doubles: still 3
    [InlineData(0.25, 16, 4, 100, 4)]
    [InlineData(0.25, 16, 6, 100, 6)]   // one per large source present wins over the share
    [InlineData(0.5, 16, 1, 3, 3)]      // never more than the large examples in the pool
    [InlineData(1.0, 8, 1, 100, 8)]
    public void The_reserve_is_the_larger_of_one_per_large_source_and_the_share_capped_by_what_the_pool_holds(
        double rho, int budget, int largeSources, int largeExamples, int expected)
    {
        Assert.Equal(expected, new SourceBalance(true, rho).Reserve(budget, largeSources, largeExamples));
    }

    [Fact]
    public void Proportional_floors_leave_a_remainder_that_goes_to_the_smallest_allocation()
    {
        int[] pool = Pool(5, 3, 2);

        BudgetAllocation a = BudgetAllocator.Allocate(pool, [false, false, false], 7, rngSeed: 0, Quarter);

        // Floors 3.5 -> 3, 2.1 -> 2, 1.4 -> 1; the one left over goes to source 2, the smallest.
        Assert.Equal([3, 2, 2], a.PerSourceBudget);
        Assert.Empty(a.KeptIndices);
    }

    [Fact]
    public void Remainder_ties_go_to_the_lower_source_id()
    {
        int[] pool = Pool(3, 3, 3);

        BudgetAllocation a = BudgetAllocator.Allocate(pool, [false, false, false], 5, rngSeed: 0, Quarter);

        Assert.Equal([2, 2, 1], a.PerSourceBudget);
    }

    [Fact]
    public void A_source_with_fewer_pool_examples_than_its_remainder_share_is_capped_and_the_rest_moves_on()
    {
        int[] pool = Pool(1, 1, 50, 50);

        BudgetAllocation a = BudgetAllocator.Allocate(pool, [false, false, false, false], 101, rngSeed: 0, Quarter);

        // Floors 0, 0, 49, 49; remainder 3: one each to the single-example sources, which are then
        // full, and the last to source 2.
        Assert.Equal([1, 1, 50, 49], a.PerSourceBudget);
    }

    [Fact]
    public void Small_sources_are_kept_whole_and_only_the_rest_of_the_budget_is_split()
    {
        int[] pool = Pool(4, 10, 2, 6);
        bool[] small = [true, false, true, false];

        BudgetAllocation a = BudgetAllocator.Allocate(pool, small, 14, rngSeed: 0, Quarter);

        Assert.Equal(6, a.KeptIndices.Length);
        Assert.Equal(Enumerable.Range(0, pool.Length).Where(i => small[pool[i]]), a.KeptIndices);
        Assert.Equal([0, 5, 0, 3], a.PerSourceBudget);
    }

    [Fact]
    public void A_budget_above_the_pool_size_gives_every_example()
    {
        int[] pool = Pool(2, 7, 3);

        BudgetAllocation a = BudgetAllocator.Allocate(pool, [true, false, false], 100, rngSeed: 0, Quarter);

        Assert.Equal(2, a.KeptIndices.Length);
        Assert.Equal([0, 7, 3], a.PerSourceBudget);
    }

    [Fact]
    public void Source_ids_beyond_the_small_source_mask_count_as_large()
    {
        BudgetAllocation a = BudgetAllocator.Allocate([0, 3, 3, 3], [true], 3, rngSeed: 0, Quarter);

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

            BudgetAllocation a = BudgetAllocator.Allocate(pool, small, budget, trial, Quarter);

            Assert.Equal(Math.Min(budget, pool.Length), a.KeptIndices.Length + a.PerSourceBudget.Sum());
            Assert.Equal(a.KeptIndices.Length, a.KeptIndices.Distinct().Count());
            Assert.All(a.KeptIndices, i => Assert.True(small[pool[i]]));
            int smallInPool = pool.Count(s => small[s]);
            int[] largePresent = pool.Where(s => !small[s]).Distinct().ToArray();
            int room = budget - Quarter.Reserve(budget, largePresent.Length, pool.Length - smallInPool);
            // All small examples while they fit in b - R, else exactly b - R of them, from as many small sources as possible.
            Assert.Equal(Math.Min(smallInPool, room), a.KeptIndices.Length);
            Assert.Equal(smallInPool - a.KeptIndices.Length, a.SmallLeftOut);
            int smallSourcesPresent = pool.Where(s => small[s]).Distinct().Count();
            Assert.Equal(Math.Min(smallSourcesPresent, a.KeptIndices.Length), a.KeptIndices.Select(i => pool[i]).Distinct().Count());
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
        Assert.Throws<ArgumentOutOfRangeException>(() => BudgetAllocator.Allocate([0], [false], -1, 0, Quarter));
    }
}
