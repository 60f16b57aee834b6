using System.Diagnostics;
using CoLM.Collectives;
using Xunit;

namespace CoLM.Collectives.Tests;

/// <summary>
/// What every <see cref="ICollective"/> backend promises, run with real threads (one per rank).
/// Each backend adds a subclass that says how to build a world of its ranks.
/// </summary>
public abstract class CollectiveContract
{
    /// <summary>Long enough never to fire in a passing test.</summary>
    protected static readonly TimeSpan Patient = TimeSpan.FromSeconds(5);

    /// <summary>For the tests that wait for a timeout on purpose.</summary>
    protected static readonly TimeSpan Short = TimeSpan.FromMilliseconds(500);

    protected abstract CollectiveWorld CreateWorld(int worldSize, TimeSpan timeout);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void AllReduceSum_gives_every_rank_the_ring_order_sum_bit_for_bit(int worldSize)
    {
        using var world = CreateWorld(worldSize, Patient);
        const int length = 1037; // not a multiple of any vector width, so chunk edges and tails are exercised
        var inputs = Enumerable.Range(0, worldSize).Select(r => Floats.Random(length, seed: r)).ToArray();
        var expected = Floats.SumInRingOrder(inputs);
        var buffers = inputs.Select(input => input.ToArray()).ToArray();

        RankThreads.RunAll(worldSize, r => world.Rank(r).AllReduceSum(buffers[r]));

        foreach (var buffer in buffers)
        {
            Floats.AssertSameBits(expected, buffer);
        }
    }

    [Fact]
    public void AllReduceSum_result_does_not_depend_on_which_rank_arrives_first()
    {
        const int worldSize = 4;
        using var world = CreateWorld(worldSize, Patient);
        var inputs = Enumerable.Range(0, worldSize).Select(r => Floats.Random(4099, seed: 100 + r)).ToArray();
        var expected = Floats.SumInRingOrder(inputs);
        Assert.False(
            Floats.SameBits(expected, Floats.SumInRankOrder(inputs.Reverse().ToArray())),
            "test data must be order-sensitive, or this test proves nothing");

        int[][] arrivalOrders = [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]];
        foreach (var order in arrivalOrders)
        {
            var buffers = inputs.Select(input => input.ToArray()).ToArray();
            RankThreads.RunAll(worldSize, r =>
            {
                Thread.Sleep(20 * Array.IndexOf(order, r));
                world.Rank(r).AllReduceSum(buffers[r]);
            });

            foreach (var buffer in buffers)
            {
                Floats.AssertSameBits(expected, buffer);
            }
        }
    }

    [Fact]
    public void AllReduceSum_on_two_ranks_is_the_plain_rank_order_sum()
    {
        using var world = CreateWorld(2, Patient);
        var inputs = new[] { Floats.Random(1037, seed: 7), Floats.Random(1037, seed: 8) };
        var buffers = inputs.Select(input => input.ToArray()).ToArray();

        RankThreads.RunAll(2, r => world.Rank(r).AllReduceSum(buffers[r]));

        // Chunk 0 is folded as x1 + x0 and chunk 1 as x0 + x1; IEEE addition is commutative.
        Floats.AssertSameBits(Floats.SumInRankOrder(inputs), buffers[0]);
        Floats.AssertSameBits(Floats.SumInRankOrder(inputs), buffers[1]);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Broadcast_copies_the_roots_bytes_to_every_rank_for_each_root(int worldSize)
    {
        using var world = CreateWorld(worldSize, Patient);
        const int length = 1001;
        for (var root = 0; root < worldSize; root++)
        {
            var buffers = Enumerable.Range(0, worldSize)
                .Select(r => Enumerable.Range(0, length).Select(i => (byte)((r * 31) + i)).ToArray())
                .ToArray();
            var expected = buffers[root].ToArray();

            var broadcastRoot = root;
            RankThreads.RunAll(worldSize, r => world.Rank(r).Broadcast(buffers[r], broadcastRoot));

            foreach (var buffer in buffers)
            {
                Assert.Equal(expected, buffer);
            }
        }
    }

    [Fact]
    public void Many_back_to_back_calls_of_both_kinds_stay_correct()
    {
        const int worldSize = 3;
        const int iterations = 500;
        using var world = CreateWorld(worldSize, Patient);

        RankThreads.RunAll(worldSize, r =>
        {
            var rank = world.Rank(r);
            var floats = new float[300];
            var bytes = new byte[8];
            for (var i = 0; i < iterations; i++)
            {
                // Lengths change every call so a stale length or pointer from the previous call shows.
                var span = floats.AsSpan(0, 1 + (i * 37 % floats.Length));
                for (var j = 0; j < span.Length; j++)
                {
                    span[j] = r + i + j; // small integers: the sum is exact, so expected values are easy
                }

                rank.AllReduceSum(span);
                for (var j = 0; j < span.Length; j++)
                {
                    Assert.Equal((worldSize * (i + j)) + 3f, span[j]);
                }

                var root = i % worldSize;
                BitConverter.TryWriteBytes(bytes, r == root ? (long)i : -1L);
                rank.Broadcast(bytes, root);
                Assert.Equal(i, BitConverter.ToInt64(bytes));
            }
        });
    }

    [Fact]
    public void Mismatched_lengths_fail_on_every_rank_instead_of_hanging()
    {
        const int worldSize = 3;
        using var world = CreateWorld(worldSize, Patient);

        var errors = RankThreads.Run(worldSize, r => world.Rank(r).AllReduceSum(new float[r == 2 ? 11 : 10]));

        foreach (var error in errors)
        {
            var argument = Assert.IsAssignableFrom<ArgumentException>(error);
            Assert.Contains("length", argument.Message, StringComparison.OrdinalIgnoreCase);
        }
    }

    [Fact]
    public void Different_operations_on_different_ranks_fail_on_every_rank()
    {
        const int worldSize = 2;
        using var world = CreateWorld(worldSize, Patient);

        var errors = RankThreads.Run(worldSize, r =>
        {
            if (r == 0)
            {
                world.Rank(r).AllReduceSum(new float[4]);
            }
            else
            {
                world.Rank(r).Broadcast(new byte[16], root: 0);
            }
        });

        foreach (var error in errors)
        {
            var mismatch = Assert.IsType<InvalidOperationException>(error);
            Assert.Contains("Broadcast", mismatch.Message, StringComparison.Ordinal);
            Assert.Contains("AllReduceSum", mismatch.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Timeout_names_the_rank_that_did_not_arrive()
    {
        const int worldSize = 3;
        using var world = CreateWorld(worldSize, Short);
        var clock = Stopwatch.StartNew();

        var errors = RankThreads.Run(worldSize, r =>
        {
            if (r != 2)
            {
                world.Rank(r).AllReduceSum(new float[8]);
            }
        });

        Assert.InRange(clock.Elapsed, Short * 0.9, Patient);
        Assert.Null(errors[2]);
        foreach (var error in errors[..2])
        {
            var timeout = Assert.IsType<CollectiveTimeoutException>(error);
            Assert.Equal(new[] { 2 }, timeout.MissingRanks);
            Assert.Contains("rank(s) 2", timeout.Message, StringComparison.Ordinal);
            Assert.Contains("AllReduceSum", timeout.Message, StringComparison.Ordinal);
            Assert.Equal(0, timeout.Generation);
        }
    }

    [Fact]
    public void Abort_wakes_a_rank_waiting_for_a_peer_whose_thread_died()
    {
        const int worldSize = 2;
        using var world = CreateWorld(worldSize, Patient);
        var clock = Stopwatch.StartNew();

        var errors = RankThreads.Run(worldSize, r =>
        {
            if (r == 0)
            {
                world.Rank(r).AllReduceSum(new float[8]);
                return;
            }

            // Rank 1 dies mid-step; its supervisor aborts the generation on its behalf.
            Thread.Sleep(100);
            world.Abort("rank 1 died: device lost");
            throw new InvalidOperationException("device lost");
        });

        Assert.True(clock.Elapsed < Patient, $"rank 0 waited {clock.Elapsed} instead of being woken");
        var aborted = Assert.IsType<CollectiveAbortedException>(errors[0]);
        Assert.Contains("rank 1 died", aborted.Message, StringComparison.Ordinal);
        Assert.Equal(0, aborted.Generation);

        // Later calls in the aborted generation fail at once too.
        Assert.Throws<CollectiveAbortedException>(() => world.Rank(0).AllReduceSum(new float[8]));
    }

    [Fact]
    public void BeginGeneration_after_an_abort_makes_the_group_usable_again()
    {
        const int worldSize = 3;
        using var world = CreateWorld(worldSize, Patient);
        var errors = RankThreads.Run(worldSize, r =>
        {
            if (r == 2)
            {
                Thread.Sleep(50);
                world.Abort("rank 2 died");
                return;
            }

            world.Rank(r).AllReduceSum(new float[8]);
        });
        Assert.All(errors[..2], error => Assert.IsType<CollectiveAbortedException>(error));

        Assert.True(world.BeginGeneration(1));
        Assert.False(world.BeginGeneration(1));
        Assert.False(world.BeginGeneration(0));

        // Fresh threads stand in for the restarted trainers.
        var buffers = Enumerable.Range(0, worldSize).Select(r => Enumerable.Repeat((float)r, 8).ToArray()).ToArray();
        RankThreads.RunAll(worldSize, r =>
        {
            Assert.Equal(1, world.Rank(r).Generation);
            world.Rank(r).AllReduceSum(buffers[r]);
        });
        Assert.All(buffers, buffer => Assert.All(buffer, value => Assert.Equal(3f, value)));
    }
}
