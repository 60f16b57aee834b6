using CoLM.Cluster.Actors;

namespace CoLM.Cluster.Tests;

public sealed class RecoverySourceTests
{
    private const ulong Good = 0xA934666D, Other = 0x3022C925;

    private static ReplicaHolding Holds(int rank, long step, ulong checksum = Good) => new(rank, true, step, checksum);

    private static ReplicaHolding Restarted(int rank) => new(rank, false, -1, 0);

    [Fact]
    public void A_restarted_rank_0_receives_from_the_healthy_rank_1()
    {
        var plan = RecoverySource.Choose(14, Good, [Restarted(0), Holds(1, 14)], initialStateIsValid: false, checkpoint: null);

        Assert.Equal(new RecoveryPlan.FromReplica(1), plan);
    }

    [Fact]
    public void The_lowest_healthy_rank_is_the_source_when_several_qualify()
    {
        var plan = RecoverySource.Choose(7, null, [Holds(0, 7), Restarted(1), Holds(2, 7)], initialStateIsValid: false, checkpoint: null);

        Assert.Equal(new RecoveryPlan.FromReplica(0), plan);
    }

    [Fact]
    public void A_replica_that_applied_part_of_the_abandoned_step_is_not_a_source()
    {
        var plan = RecoverySource.Choose(7, null, [Holds(0, 8, Other), Holds(1, 7)], initialStateIsValid: false, checkpoint: null);

        Assert.Equal(new RecoveryPlan.FromReplica(1), plan);
    }

    [Fact]
    public void A_replica_whose_checksum_disagrees_with_the_committed_one_is_not_a_source()
    {
        var plan = RecoverySource.Choose(7, Good, [Holds(0, 7, Other), Holds(1, 7, Good)], initialStateIsValid: false, checkpoint: null);

        Assert.Equal(new RecoveryPlan.FromReplica(1), plan);
    }

    [Fact]
    public void Candidates_that_disagree_with_each_other_stop_the_run_as_diverged()
    {
        var plan = RecoverySource.Choose(7, null, [Holds(0, 7, Other), Holds(1, 7, Good)], initialStateIsValid: false, checkpoint: null);

        var impossible = Assert.IsType<RecoveryPlan.Impossible>(plan);
        Assert.Contains("diverged", impossible.Reason);
    }

    [Fact]
    public void Before_the_first_step_a_rebuilt_replica_is_a_valid_source()
    {
        var plan = RecoverySource.Choose(0, null, [Restarted(0), Restarted(1)], initialStateIsValid: true, checkpoint: null);

        Assert.Equal(new RecoveryPlan.FromReplica(0), plan);
    }

    [Fact]
    public void Before_the_first_step_a_replica_that_applied_step_1_is_still_not_the_source()
    {
        var plan = RecoverySource.Choose(0, null, [Holds(0, 1), Restarted(1)], initialStateIsValid: true, checkpoint: null);

        Assert.Equal(new RecoveryPlan.FromReplica(1), plan);
    }

    [Fact]
    public void With_every_replica_restarted_a_checkpoint_of_the_committed_step_is_reloaded()
    {
        var plan = RecoverySource.Choose(20, Good, [Restarted(0), Restarted(1)], initialStateIsValid: false, checkpoint: (20, "ckpt/step-20/trainer-state.bin"));

        Assert.Equal(new RecoveryPlan.FromCheckpoint("ckpt/step-20/trainer-state.bin"), plan);
    }

    [Fact]
    public void With_every_replica_restarted_and_an_older_checkpoint_the_run_stops_and_says_why()
    {
        var plan = RecoverySource.Choose(25, Good, [Restarted(0), Restarted(1)], initialStateIsValid: false, checkpoint: (20, "x"));

        var impossible = Assert.IsType<RecoveryPlan.Impossible>(plan);
        Assert.Contains("no replica holds step 25", impossible.Reason);
        Assert.Contains("rank 0 restarted", impossible.Reason);
        Assert.Contains("checkpoint is of step 20", impossible.Reason);
    }
}
