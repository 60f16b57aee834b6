using CoLM.Collectives;
using Xunit;

namespace CoLM.Collectives.Tests;

/// <summary>The canonical chunking and summation order shared by every backend.</summary>
public sealed class RingReductionOrderTests
{
    [Theory]
    [InlineData(0, 3)]
    [InlineData(7, 4)]
    [InlineData(1037, 1)]
    [InlineData(1037, 3)]
    [InlineData(1 << 20, 4)]
    public void Chunks_are_contiguous_cover_the_buffer_and_start_on_cache_lines(int count, int worldSize)
    {
        var next = 0;
        for (var chunk = 0; chunk < worldSize; chunk++)
        {
            var (start, end) = RingReductionOrder.ChunkBounds(count, chunk, worldSize);
            Assert.Equal(next, start);
            Assert.InRange(end, start, count);
            Assert.Equal(0, start % 16);
            next = end;
        }

        Assert.Equal(count, next);
    }

    [Fact]
    public void The_fold_of_chunk_c_starts_after_c_and_ends_with_c()
    {
        Assert.Equal(2, RingReductionOrder.FirstRank(1, 4));
        Assert.Equal(0, RingReductionOrder.FirstRank(3, 4));
        Assert.Equal(new[] { 2, 3, 0, 1 }, Enumerable.Range(0, 4).Select(k => RingReductionOrder.RankAt(1, k, 4)));
    }

    [Fact]
    public void With_three_ranks_the_ring_order_differs_from_rank_order()
    {
        // Guards the test data: the bit-for-bit contract tests could not otherwise tell the orders apart.
        var inputs = Enumerable.Range(0, 3).Select(r => Floats.Random(1037, seed: r)).ToArray();
        Assert.False(Floats.SameBits(Floats.SumInRankOrder(inputs), Floats.SumInRingOrder(inputs)));
    }

    [Fact]
    public void Bounds_reject_a_chunk_outside_the_world()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => RingReductionOrder.ChunkBounds(10, 3, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => RingReductionOrder.ChunkBounds(10, 0, 0));
    }
}
