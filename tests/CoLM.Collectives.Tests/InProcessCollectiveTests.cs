using CoLM.Collectives;
using Xunit;

namespace CoLM.Collectives.Tests;

/// <summary>The contract, plus what only the in-process group promises.</summary>
public sealed class InProcessCollectiveTests : CollectiveContract
{
    [Fact]
    public void ForRank_returns_one_handle_per_rank_for_the_groups_life()
    {
        using var group = new InProcessCollectiveGroup(3, Patient);

        Assert.Same(group.ForRank(1), group.ForRank(1));
        Assert.Equal(1, group.ForRank(1).Rank);
        Assert.Equal(3, group.ForRank(1).WorldSize);
        Assert.Throws<ArgumentOutOfRangeException>(() => group.ForRank(3));
        Assert.Throws<ArgumentOutOfRangeException>(() => group.ForRank(-1));
    }

    [Fact]
    public void A_wrong_argument_fails_one_call_and_leaves_the_group_usable()
    {
        using var group = new InProcessCollectiveGroup(2, Patient);

        var errors = RankThreads.Run(2, r => group.ForRank(r).Broadcast(new byte[4], root: r));
        Assert.All(errors, error => Assert.Contains("root", Assert.IsType<ArgumentException>(error).Message, StringComparison.Ordinal));

        var buffers = new[] { new[] { 1f, 2f }, new[] { 10f, 20f } };
        RankThreads.RunAll(2, r => group.ForRank(r).AllReduceSum(buffers[r]));
        Assert.All(buffers, buffer => Assert.Equal(new[] { 11f, 22f }, buffer));
    }

    [Fact]
    public void Empty_buffers_are_a_valid_call()
    {
        using var group = new InProcessCollectiveGroup(3, Patient);

        RankThreads.RunAll(3, r =>
        {
            group.ForRank(r).AllReduceSum(Span<float>.Empty);
            group.ForRank(r).Broadcast(Span<byte>.Empty, root: 2);
        });
    }

    [Fact]
    public void Cancelling_a_wait_aborts_the_generation_for_the_other_ranks()
    {
        using var group = new InProcessCollectiveGroup(2, Patient);
        using var cancellation = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));

        Assert.Throws<OperationCanceledException>(() => group.ForRank(0).AllReduceSum(new float[4], cancellation.Token));

        var aborted = Assert.Throws<CollectiveAbortedException>(() => group.ForRank(1).AllReduceSum(new float[4]));
        Assert.Contains("rank 0 cancelled AllReduceSum call #0", aborted.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_late_rank_after_a_timeout_gets_the_same_timeout_and_a_new_generation_recovers()
    {
        using var group = new InProcessCollectiveGroup(2, Short);

        Assert.Throws<CollectiveTimeoutException>(() => group.ForRank(0).AllReduceSum(new float[4]));
        var late = Assert.Throws<CollectiveTimeoutException>(() => group.ForRank(1).AllReduceSum(new float[4]));
        Assert.Equal(new[] { 1 }, late.MissingRanks);

        Assert.True(group.BeginGeneration(7));
        RankThreads.RunAll(2, r => group.ForRank(r).AllReduceSum(new float[4]));
        Assert.Equal(7, group.Generation);
    }

    [Fact]
    public void BeginGeneration_wakes_ranks_still_waiting_in_the_old_generation()
    {
        using var group = new InProcessCollectiveGroup(2, Patient);

        var errors = RankThreads.Run(2, r =>
        {
            if (r == 0)
            {
                group.ForRank(0).AllReduceSum(new float[4]);
            }
            else
            {
                Thread.Sleep(50);
                group.BeginGeneration(1);
            }
        });

        var aborted = Assert.IsType<CollectiveAbortedException>(errors[0]);
        Assert.Contains("superseded by generation 1", aborted.Message, StringComparison.Ordinal);
        Assert.Equal(0, aborted.Generation);
    }

    [Fact]
    public void Interrupting_a_waiting_rank_aborts_the_generation_for_the_others()
    {
        using var group = new InProcessCollectiveGroup(2, Patient);
        Exception? error = null;
        var waiter = new Thread(() => error = Record.Exception(() => group.ForRank(0).AllReduceSum(new float[4])));

        waiter.Start();
        Thread.Sleep(50);
        waiter.Interrupt();

        Assert.True(waiter.Join(Patient));
        Assert.IsType<ThreadInterruptedException>(error);
        var aborted = Assert.Throws<CollectiveAbortedException>(() => group.ForRank(1).AllReduceSum(new float[4]));
        Assert.Contains("rank 0 was interrupted in AllReduceSum call #0", aborted.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Abort_is_idempotent_and_keeps_the_first_reason()
    {
        using var group = new InProcessCollectiveGroup(1, Patient);

        group.Abort("first");
        group.Abort("second");

        var aborted = Assert.Throws<CollectiveAbortedException>(() => group.ForRank(0).AllReduceSum(new float[1]));
        Assert.Equal("first", aborted.Reason);
    }

    [Fact]
    public void Dispose_wakes_waiters_and_later_calls_are_refused()
    {
        var group = new InProcessCollectiveGroup(2, Patient);

        var errors = RankThreads.Run(2, r =>
        {
            if (r == 0)
            {
                group.ForRank(0).AllReduceSum(new float[4]);
            }
            else
            {
                Thread.Sleep(50);
                group.Dispose();
            }
        });

        Assert.IsType<CollectiveAbortedException>(errors[0]);
        Assert.Throws<ObjectDisposedException>(() => group.ForRank(1).AllReduceSum(new float[4]));
    }

    [Fact]
    public void Two_threads_on_one_rank_are_refused()
    {
        using var group = new InProcessCollectiveGroup(2, Patient);

        var errors = RankThreads.Run(2, t =>
        {
            if (t == 0)
            {
                group.ForRank(0).AllReduceSum(new float[4]);
                return;
            }

            Thread.Sleep(50); // arrives while the first thread waits for rank 1
            try
            {
                group.ForRank(0).AllReduceSum(new float[4]);
            }
            finally
            {
                group.Abort("test over"); // releases the first thread
            }
        });

        Assert.IsType<InvalidOperationException>(errors[1]);
        Assert.IsType<CollectiveAbortedException>(errors[0]);
    }

    [Fact]
    public void Abort_in_the_middle_of_a_stream_of_calls_never_hangs_or_corrupts()
    {
        const int worldSize = 3;
        using var group = new InProcessCollectiveGroup(worldSize, Patient);
        var completed = new int[worldSize];

        var errors = RankThreads.Run(worldSize, r =>
        {
            var buffer = new float[64];
            for (var i = 0; ; i++)
            {
                if (r == 0 && i == 300)
                {
                    group.Abort("rank 0 chose to stop");
                }

                Array.Fill(buffer, i + r);
                group.ForRank(r).AllReduceSum(buffer);
                Assert.All(buffer, value => Assert.Equal((worldSize * i) + 3f, value));
                completed[r] = i + 1;
            }
        });

        Assert.All(errors, error => Assert.IsType<CollectiveAbortedException>(error));

        // Every call is all-or-nothing, so the ranks agree on how many completed.
        Assert.Equal(300, completed[0]);
        Assert.All(completed, count => Assert.Equal(completed[0], count));
    }

    [Fact]
    public void Steady_state_calls_allocate_nothing_per_call()
    {
        const int worldSize = 2;
        using var group = new InProcessCollectiveGroup(worldSize, Patient);
        var allocated = new long[worldSize];

        RankThreads.RunAll(worldSize, r =>
        {
            var floats = new float[1000];
            var bytes = new byte[100];
            using var cancellation = new CancellationTokenSource();
            void Step()
            {
                group.ForRank(r).AllReduceSum(floats, cancellation.Token);
                group.ForRank(r).Broadcast(bytes, root: 1);
            }

            for (var i = 0; i < 20; i++)
            {
                Step();
            }

            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < 200; i++)
            {
                Step();
            }

            allocated[r] = GC.GetAllocatedBytesForCurrentThread() - before;
        });

        // 400 calls per rank: one smallest object (24 bytes) per call would be 9,600 bytes. The
        // bound leaves room only for the runtime's one-time lazy initialisations, which a loaded
        // machine can first reach in the measured window.
        Assert.All(allocated, bytes => Assert.InRange(bytes, 0, 512));
    }

    protected override CollectiveWorld CreateWorld(int worldSize, TimeSpan timeout) =>
        new InProcessWorld(new InProcessCollectiveGroup(worldSize, timeout));

    private sealed class InProcessWorld(InProcessCollectiveGroup group) : CollectiveWorld
    {
        public override int WorldSize => group.WorldSize;

        public override ICollective Rank(int rank) => group.ForRank(rank);

        public override void Abort(string reason) => group.Abort(reason);

        public override bool BeginGeneration(long generation) => group.BeginGeneration(generation);

        public override void Dispose() => group.Dispose();
    }
}
