using System.Diagnostics;
using System.Net.Sockets;
using CoLM.Collectives;
using CoLM.Collectives.Tcp;
using Xunit;

namespace CoLM.Collectives.Tests;

/// <summary>The contract over real loopback sockets, plus what only the TCP ring promises.</summary>
public sealed class TcpRingCollectiveTests : CollectiveContract
{
    /// <summary>Small segments, so even the contract's few-kilobyte buffers are cut into several.</summary>
    private const int ContractSegmentBytes = 1024;

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void AllReduceSum_of_many_segments_is_bit_identical_to_the_in_process_group(int worldSize)
    {
        const int segmentBytes = 4096;
        var length = (worldSize * 5 * segmentBytes / sizeof(float)) + 1037; // several segments per chunk, ragged tail
        var inputs = Enumerable.Range(0, worldSize).Select(r => Floats.Random(length, seed: 40 + r)).ToArray();

        var inProcess = inputs.Select(input => input.ToArray()).ToArray();
        using (var group = new InProcessCollectiveGroup(worldSize, Patient))
        {
            RankThreads.RunAll(worldSize, r => group.ForRank(r).AllReduceSum(inProcess[r]));
        }

        var overTcp = inputs.Select(input => input.ToArray()).ToArray();
        using (var world = TcpWorld.Start(worldSize, new TcpRingOptions(Patient, segmentBytes)))
        {
            RankThreads.RunAll(worldSize, r => world.Rank(r).AllReduceSum(overTcp[r]));
        }

        var expected = Floats.SumInRingOrder(inputs);
        for (var r = 0; r < worldSize; r++)
        {
            Floats.AssertSameBits(expected, inProcess[r]);
            Floats.AssertSameBits(expected, overTcp[r]);
        }
    }

    [Fact]
    public void Broadcast_of_many_segments_reaches_every_rank_from_every_root()
    {
        const int worldSize = 4;
        const int length = (9 * 1000) + 17;
        using var world = TcpWorld.Start(worldSize, new TcpRingOptions(Patient, SegmentBytes: 1000));
        for (var root = 0; root < worldSize; root++)
        {
            var buffers = Enumerable.Range(0, worldSize).Select(r => new byte[length]).ToArray();
            new Random(root).NextBytes(buffers[root]);
            var broadcastRoot = root;

            RankThreads.RunAll(worldSize, r => world.Rank(r).Broadcast(buffers[r], broadcastRoot));

            Assert.All(buffers, buffer => Assert.Equal(buffers[root], buffer));
        }
    }

    [Fact]
    public void Calls_before_the_first_generation_are_refused()
    {
        using var ring = new TcpRingCollective("127.0.0.1", new TcpRingOptions(Patient));

        Assert.Matches(@"^127\.0\.0\.1:\d+$", ring.LocalEndpoint);
        Assert.Throws<InvalidOperationException>(() => ring.AllReduceSum(new float[4]));
        Assert.Throws<InvalidOperationException>(() => ring.Rank);
    }

    [Fact]
    public void A_world_of_one_needs_no_sockets()
    {
        using var ring = new TcpRingCollective("127.0.0.1", new TcpRingOptions(Patient));
        ring.BeginGeneration(3, 0, ["unreachable.invalid:1"]);
        var buffer = new[] { 1.5f, 2f };

        ring.AllReduceSum(buffer);
        ring.Broadcast(new byte[3], root: 0);

        Assert.Equal(new[] { 1.5f, 2f }, buffer);
        Assert.Equal(3, ring.Generation);
        Assert.Equal((0, 1), (ring.Rank, ring.WorldSize));
    }

    [Fact]
    public void A_crashed_peer_fails_the_call_on_every_survivor_naming_it()
    {
        const int worldSize = 3;
        using var world = TcpWorld.Start(worldSize, new TcpRingOptions(Patient, SegmentBytes: 4096));
        var crashed = world.Ring(1).LocalEndpoint;
        var clock = Stopwatch.StartNew();

        var errors = RankThreads.Run(worldSize, r =>
        {
            var buffer = new float[50_000];
            if (r == 1)
            {
                // Rank 1 takes part in a few calls, then its process dies in the middle of the next.
                for (var i = 0; i < 3; i++)
                {
                    world.Rank(r).AllReduceSum(buffer);
                }

                world.Ring(1).SimulateCrash();
                return;
            }

            while (true)
            {
                world.Rank(r).AllReduceSum(buffer);
            }
        });

        Assert.True(clock.Elapsed < Patient, $"survivors took {clock.Elapsed} to notice");
        foreach (var r in new[] { 0, 2 })
        {
            var aborted = Assert.IsType<CollectiveAbortedException>(errors[r]);
            Assert.Contains($"connection to rank 1 ({crashed}) lost", aborted.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_peer_killed_while_data_flows_fails_the_survivors_naming_it()
    {
        const int worldSize = 3;
        using var world = TcpWorld.Start(worldSize, new TcpRingOptions(Patient, SegmentBytes: 64 << 10));
        var crashed = world.Ring(1).LocalEndpoint;
        var calls = new int[worldSize];

        var errors = RankThreads.Run(worldSize + 1, t =>
        {
            if (t == worldSize)
            {
                // The "kill -9": rank 1's sockets close under its own thread, in the middle of a call.
                SpinWait.SpinUntil(() => Volatile.Read(ref calls[1]) >= 2);
                Thread.Sleep(5);
                world.Ring(1).SimulateCrash();
                return;
            }

            var buffer = new float[1 << 21]; // 8 MiB: many segments per call
            while (true)
            {
                world.Rank(t).AllReduceSum(buffer);
                Interlocked.Increment(ref calls[t]);
            }
        });

        Assert.Null(errors[worldSize]);
        Assert.NotNull(errors[1]);
        foreach (var r in new[] { 0, 2 })
        {
            var aborted = Assert.IsType<CollectiveAbortedException>(errors[r]);
            Assert.Contains($"connection to rank 1 ({crashed}) lost", aborted.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_peer_that_never_joins_a_generation_times_out_by_name()
    {
        const int worldSize = 3;
        var rings = Enumerable.Range(0, worldSize).Select(_ => new TcpRingCollective("127.0.0.1", new TcpRingOptions(Short))).ToArray();
        try
        {
            var endpoints = rings.Select(ring => ring.LocalEndpoint).ToArray();
            var errors = RankThreads.Run(2, r => rings[r].BeginGeneration(5, r, endpoints));

            foreach (var error in errors)
            {
                var timeout = Assert.IsType<CollectiveTimeoutException>(error);
                Assert.Equal(new[] { 2 }, timeout.MissingRanks);
                Assert.Equal(5, timeout.Generation);
            }

            // The failed generation stays failed for calls until a newer one begins.
            Assert.ThrowsAny<Exception>(() => rings[0].AllReduceSum(new float[4]));
        }
        finally
        {
            Array.ForEach(rings, ring => ring.Dispose());
        }
    }

    [Fact]
    public void A_stale_generation_connection_is_refused_and_the_current_ring_still_forms()
    {
        var options = new TcpRingOptions(TimeSpan.FromSeconds(2));
        using var current = new TcpRingCollective("127.0.0.1", options);
        using var peer = new TcpRingCollective("127.0.0.1", options);
        using var stale = new TcpRingCollective("127.0.0.1", options);

        // `current` is rank 1 of generation 2; `stale` still believes in generation 1 and dials it.
        var errors = RankThreads.Run(2, t =>
        {
            if (t == 0)
            {
                current.BeginGeneration(2, 1, [peer.LocalEndpoint, current.LocalEndpoint]);
                return;
            }

            var refused = Assert.Throws<CollectiveAbortedException>(
                () => stale.BeginGeneration(1, 0, [stale.LocalEndpoint, current.LocalEndpoint]));
            Assert.Contains("refused", refused.Message, StringComparison.Ordinal);
            peer.BeginGeneration(2, 0, [peer.LocalEndpoint, current.LocalEndpoint]);
        });
        Assert.All(errors, Assert.Null);
        var buffers = new[] { new[] { 1f, 2f }, new[] { 10f, 20f } };
        var ranks = new ICollective[] { peer, current };
        RankThreads.RunAll(2, r => ranks[r].AllReduceSum(buffers[r]));
        Assert.All(buffers, buffer => Assert.Equal(new[] { 11f, 22f }, buffer));
    }

    [Fact]
    public void A_new_generation_after_a_crash_reconnects_with_a_replacement_rank()
    {
        const int worldSize = 3;
        var options = new TcpRingOptions(Patient, SegmentBytes: 4096);
        using var world = TcpWorld.Start(worldSize, options);
        world.Ring(2).SimulateCrash();
        var errors = RankThreads.Run(2, r => world.Rank(r).AllReduceSum(new float[8]));
        Assert.All(errors, error => Assert.IsType<CollectiveAbortedException>(error));

        using var replacement = new TcpRingCollective("127.0.0.1", options);
        string[] endpoints = [world.Ring(0).LocalEndpoint, world.Ring(1).LocalEndpoint, replacement.LocalEndpoint];
        var rings = new[] { world.Ring(0), world.Ring(1), replacement };
        RankThreads.RunAll(worldSize, r => rings[r].BeginGeneration(1, r, endpoints));

        var buffers = Enumerable.Range(0, worldSize).Select(r => Enumerable.Repeat((float)r, 5000).ToArray()).ToArray();
        RankThreads.RunAll(worldSize, r => rings[r].AllReduceSum(buffers[r]));
        Assert.All(buffers, buffer => Assert.All(buffer, value => Assert.Equal(3f, value)));
        Assert.All(rings, ring => Assert.Equal(1, ring.Generation));
    }

    [Fact]
    public void Cancelling_a_wait_aborts_the_generation_for_the_other_ranks()
    {
        using var world = TcpWorld.Start(2, new TcpRingOptions(Patient));
        using var cancellation = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));

        Assert.Throws<OperationCanceledException>(() => world.Rank(0).AllReduceSum(new float[4], cancellation.Token));

        var aborted = Assert.Throws<CollectiveAbortedException>(() => world.Rank(1).AllReduceSum(new float[4]));
        Assert.Contains("rank 0 cancelled AllReduceSum call #0", aborted.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_wrong_argument_fails_one_call_and_leaves_the_generation_usable()
    {
        using var world = TcpWorld.Start(2, new TcpRingOptions(Patient));

        var errors = RankThreads.Run(2, r => world.Rank(r).Broadcast(new byte[4], root: r));
        Assert.All(errors, error => Assert.Contains("root", Assert.IsType<ArgumentException>(error).Message, StringComparison.Ordinal));

        var buffers = new[] { new[] { 1f, 2f }, new[] { 10f, 20f } };
        RankThreads.RunAll(2, r => world.Rank(r).AllReduceSum(buffers[r]));
        Assert.All(buffers, buffer => Assert.Equal(new[] { 11f, 22f }, buffer));
    }

    [Fact]
    public void A_generation_that_is_not_newer_is_rejected()
    {
        using var world = TcpWorld.Start(1, new TcpRingOptions(Patient));

        Assert.Throws<ArgumentOutOfRangeException>(() => world.Ring(0).BeginGeneration(0, 0, [world.Ring(0).LocalEndpoint]));
    }

    [Fact]
    public void Steady_state_calls_allocate_nothing_per_call_on_the_calling_thread()
    {
        const int worldSize = 3;
        const int measuredSteps = 200; // 400 calls per rank
        using var world = TcpWorld.Start(worldSize, new TcpRingOptions(Patient, SegmentBytes: 1024));
        var allocated = new long[worldSize];

        RankThreads.RunAll(worldSize, r =>
        {
            var floats = new float[3000];
            var bytes = new byte[5000];
            using var cancellation = new CancellationTokenSource();
            void Step()
            {
                world.Rank(r).AllReduceSum(floats, cancellation.Token);
                world.Rank(r).Broadcast(bytes, root: 1, cancellation.Token);
            }

            for (var i = 0; i < 20; i++)
            {
                Step();
            }

            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < measuredSteps; i++)
            {
                Step();
            }

            allocated[r] = GC.GetAllocatedBytesForCurrentThread() - before;
        });

        // The runtime charges a few one-time lazy initialisations (56 bytes each, e.g. the first
        // socket poll that times out, a path only a loaded machine takes) to whichever thread hits
        // them first. One allocation per call, even of the smallest object (24 bytes), would be
        // 9,600 bytes here; the bound sits far below that and above a handful of one-time ones.
        Assert.All(allocated, bytes => Assert.InRange(bytes, 0, 512));
    }

    protected override CollectiveWorld CreateWorld(int worldSize, TimeSpan timeout) =>
        TcpWorld.Start(worldSize, new TcpRingOptions(timeout, ContractSegmentBytes));

    /// <summary>n TCP ranks on loopback in this process; a supervisor's abort and re-join reach all of them.</summary>
    private sealed class TcpWorld : CollectiveWorld
    {
        private readonly TcpRingCollective[] _rings;
        private readonly string[] _endpoints;
        private long _generation;

        private TcpWorld(TcpRingCollective[] rings)
        {
            _rings = rings;
            _endpoints = rings.Select(ring => ring.LocalEndpoint).ToArray();
        }

        public override int WorldSize => _rings.Length;

        public static TcpWorld Start(int worldSize, TcpRingOptions options)
        {
            var world = new TcpWorld(Enumerable.Range(0, worldSize).Select(_ => new TcpRingCollective("127.0.0.1", options)).ToArray());
            try
            {
                world.JoinAll(0);
                return world;
            }
            catch
            {
                world.Dispose();
                throw;
            }
        }

        public TcpRingCollective Ring(int rank) => _rings[rank];

        public override ICollective Rank(int rank) => _rings[rank];

        public override void Abort(string reason)
        {
            foreach (var ring in _rings)
            {
                ring.Abort(reason);
            }
        }

        public override bool BeginGeneration(long generation)
        {
            if (generation <= _generation)
            {
                return false;
            }

            JoinAll(generation);
            return true;
        }

        public override void Dispose()
        {
            foreach (var ring in _rings)
            {
                ring.Dispose();
            }
        }

        private void JoinAll(long generation)
        {
            _generation = generation;
            RankThreads.RunAll(WorldSize, r => _rings[r].BeginGeneration(generation, r, _endpoints));
        }
    }
}
