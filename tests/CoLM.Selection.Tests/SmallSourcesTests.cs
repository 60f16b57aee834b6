using Xunit;

namespace CoLM.Selection.Tests;

public class SmallSourcesTests
{
    [Fact]
    public void Sources_below_the_mean_count_are_small()
    {
        // Mean of 10, 20, 30, 100 is 40.
        Assert.Equal([true, true, true, false], SmallSources.BelowMeanSize([10, 20, 30, 100]));
    }

    [Fact]
    public void Empty_sources_are_left_out_of_the_mean_and_are_never_small()
    {
        // Mean over 10, 50 is 30; the zeros must not drag it to 15.
        Assert.Equal([false, true, false, false], SmallSources.BelowMeanSize([0, 10, 50, 0]));
    }

    [Fact]
    public void A_source_exactly_at_the_mean_is_not_small_and_equal_sizes_give_no_small_source()
    {
        Assert.Equal([true, false, false], SmallSources.BelowMeanSize([1, 4, 7]));
        Assert.Equal([false, false, false], SmallSources.BelowMeanSize([5, 5, 5]));
        Assert.Empty(SmallSources.BelowMeanSize([]));
    }

    [Fact]
    public void Mathinstruct_like_counts_mark_most_sources_small()
    {
        int[] counts = [100_000, 60_000, 40_000, 20_000, 9_000, 8_000, 7_000, 5_000, 4_000, 3_000, 2_500, 2_000, 1_000, 539];
        bool[] small = SmallSources.BelowMeanSize(counts);
        Assert.Equal(10, small.Count(s => s));
    }
}
