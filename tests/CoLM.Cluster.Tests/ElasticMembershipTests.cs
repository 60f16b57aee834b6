using CoLM.Cluster.Actors;
using CoLM.Cluster.Coordination;

namespace CoLM.Cluster.Tests;

/// <summary>
/// Elastic membership in the coordinator's state machine: a lost node's ranks leave and the
/// survivors redo the step in progress; a node that joins is admitted at a step boundary; below
/// colm.train.min-trainers the run waits, then stops with a checkpoint.
/// </summary>
public sealed class ElasticMembershipTests
{
    private static readonly TrainerKey Node0 = new("node-0", 0), Node1 = new("node-1", 0), Node2 = new("node-2", 0);

    private static RunMachineDriver Started(int trainers, params string[] extra)
    {
        var driver = new RunMachineDriver(RunMachineDriver.Define(
            [$"colm.train.trainers={trainers}", "colm.train.steps=4", "colm.train.checkpoint-every=2", .. extra]));
        driver.RegisterAll(nodePerTrainer: true);
        return driver;
    }

    /// <summary>
    /// Runs until <paramref name="node"/>'s trainer has been sent step <paramref name="step"/>'s
    /// training share; that trainer never answers (its process died) and the others' all-reduce
    /// breaks, so they report the step failed, as real trainers do.
    /// </summary>
    private static void KillDuringTraining(RunMachineDriver driver, TrainerKey node, long step)
    {
        long? brokenGeneration = null;
        driver.Reply = (rank, message, answer) =>
        {
            if (message is not TrainAssignment t || t.Step != step || (brokenGeneration ?? t.Generation) != t.Generation) return answer;
            brokenGeneration = t.Generation;
            return driver.State.Ranks[rank].Key == node ? null : new StepFailed(t.Generation, t.Step, rank, "connection reset by a peer", false, []);
        };
        driver.PauseWhen = o => o is SendToTrainer { Message: TrainAssignment a } && a.Step == step;
        driver.Pump();
        driver.Gone.Add(node);
        driver.PauseWhen = _ => false;
    }

    [Fact]
    public void A_lost_node_leaves_the_run_and_the_survivors_redo_the_step_with_the_same_pool_and_coreset_size()
    {
        var driver = Started(3);
        KillDuringTraining(driver, Node1, step: 2);

        driver.Post(new NodeLost(Node1.Node, "became unreachable", Incarnation: 1));
        driver.Pump();

        var result = driver.Single<RunCompleted>().Result;
        Assert.Equal(("completed", 4L), (result.State, result.Step));
        // Every step committed exactly once, in order: the failed attempt of step 2 committed nothing.
        Assert.Equal([1L, 2L, 3L, 4L], driver.All<StepCompleted>().Select(s => s.Step));
        var lost = driver.Single<MembershipChanged>();
        Assert.Equal(("lost", "node-1", 2), (lost.Change, lost.Node, lost.Trainers));
        Assert.Equal([1], lost.Ranks.ToArray());
        Assert.Equal([Node0, Node2], driver.State.Ranks.Select(s => s.Key));
        // The survivors (old ranks 0 and 2) were told to break the generation the lost rank was in.
        var aborts = driver.All<SendToTrainer>().Where(s => s.Message is AbortGeneration).ToArray();
        Assert.Equal([Node0, Node2], aborts.Select(a => a.Trainer));

        // The redone step draws the same pool and trains a coreset of the same size over two ranks.
        var pools = driver.All<SendToTrainer>().Select(s => s.Message).OfType<PoolAssignment>().Where(p => p.Step == 2)
            .GroupBy(p => p.Generation).Select(g => g.SelectMany(p => p.Ids).Order().ToArray()).ToArray();
        Assert.Equal(2, pools.Length);
        Assert.Equal(pools[0], pools[1]);
        var trains = driver.All<SendToTrainer>().Select(s => s.Message).OfType<TrainAssignment>().Where(t => t.Step == 2)
            .GroupBy(t => t.Generation).ToArray();
        Assert.Equal([3, 2], trains.Select(g => g.Count()));
        Assert.Equal(trains[0].Sum(t => t.Ids.Length), trains[1].Sum(t => t.Ids.Length));
        Assert.Equal(trains[0].SelectMany(t => t.Ids).Order(), trains[1].SelectMany(t => t.Ids).Order());

        var recovery = driver.Single<RecoveryCompleted>();
        Assert.Equal(("replica", 1L), (recovery.Source, recovery.Step));
        Assert.Equal(driver.ReplicaOf(Node0), driver.ReplicaOf(Node2));
        Assert.Equal(4, driver.ReplicaOf(Node0)!.Value.Step);
    }

    [Fact]
    public void A_step_the_survivors_applied_before_the_loss_is_committed_from_them_not_redone()
    {
        var driver = Started(3);
        // Node 1 dies after the all-reduce (the others applied the step) but before it reported.
        driver.Reply = (rank, message, answer) => message is TrainAssignment { Step: 2 } && driver.State.Ranks[rank].Key == Node1 ? null : answer;
        driver.PauseWhen = o => o is SendToTrainer { Message: TrainAssignment { Step: 2 } };
        driver.Pump();
        driver.Gone.Add(Node1);
        driver.Reply = (_, _, answer) => answer;
        driver.PauseWhen = _ => false;

        driver.Post(new NodeLost(Node1.Node, "became unreachable", Incarnation: 1));
        driver.Pump();

        Assert.Equal("completed", driver.Single<RunCompleted>().Result.State);
        Assert.Equal([1L, 2L, 3L, 4L], driver.All<StepCompleted>().Select(s => s.Step));
        // Step 2 was trained once: committed from the replicas that hold it.
        Assert.Single(driver.All<SendToTrainer>().Select(s => s.Message).OfType<TrainAssignment>().Where(t => t.Step == 2).Select(t => t.Generation).Distinct());
        var step2 = driver.All<StepCompleted>().Single(s => s.Step == 2);
        Assert.Equal(1.0, step2.Loss, 9);
        Assert.Equal(driver.ReplicaOf(Node0), driver.ReplicaOf(Node2));
        Assert.Equal(4, driver.ReplicaOf(Node0)!.Value.Step);
    }

    [Fact]
    public void The_restart_grace_of_a_survivors_failed_step_does_not_end_a_run_that_re_formed()
    {
        var driver = Started(3);
        KillDuringTraining(driver, Node1, step: 2);
        driver.Post(new NodeLost(Node1.Node, "became unreachable", Incarnation: 1));
        driver.PauseWhen = o => o is StepStarted { Step: 3 };
        driver.Pump();
        var grace = driver.All<ArmRestartGrace>().Last().Expiry;

        driver.Post(grace);
        driver.PauseWhen = _ => false;
        driver.Pump();

        Assert.Empty(driver.All<RunFailed>());
        Assert.Equal("completed", driver.Single<RunCompleted>().Result.State);
    }

    [Fact]
    public void A_rank_its_peers_wait_for_past_the_hang_timeout_is_named_and_evicted_and_the_others_go_on()
    {
        var driver = Started(3, "colm.cluster.hang-timeout=20s");
        // Rank 1 hangs before the all-reduce of step 2 (no answer); ranks 0 and 2 wait inside it.
        driver.Reply = (rank, message, answer) => message is TrainAssignment { Step: 2 } t && t.Generation == 1
            ? (rank == 1 ? null : new StepFailed(t.Generation, t.Step, rank, "aborted: the generation was broken", false, []))
            : answer;
        driver.PauseWhen = o => o is SendToTrainer { Message: TrainAssignment { Step: 2 } };
        driver.Pump();
        long g = driver.State.Generation;
        // Heartbeats: synchronisation made collectives #1 and #2 (broadcasts), step 1's all-reduce #3; step 2's is #4.
        driver.Post(new TrainerHeartbeat(g, 0, "TrainAssignment", 2, 12, 4, 3, 10));
        driver.Post(new TrainerHeartbeat(g, 1, "TrainAssignment", 2, 12, 3, 3, 0));
        driver.Post(new TrainerHeartbeat(g, 2, "TrainAssignment", 2, 12, 4, 3, 10));
        driver.PauseWhen = _ => false;
        driver.Pump();
        Assert.Empty(driver.All<MembershipChanged>()); // 10 s of waiting is not yet a hang

        driver.Post(new TrainerHeartbeat(g, 2, "TrainAssignment", 2, 22, 4, 3, 20.4));
        driver.Gone.Add(Node1);
        driver.Pump();

        var evicted = driver.Single<MembershipChanged>();
        Assert.Equal(("lost", "node-1", 2), (evicted.Change, evicted.Node, evicted.Trainers));
        var notice = driver.All<Noticed>().Single(n => n.Message.Contains("is silent")).Message;
        Assert.True(notice.StartsWith("trainer rank 1 on node-1 (TrainAssignment of step 2 for 12s, collective #3 its last completed) is silent: " +
                          "rank(s) 2 waited 20s in collective #4 it has not entered (colm.cluster.hang-timeout = 20s)", StringComparison.Ordinal), notice);
        Assert.Equal("completed", driver.Single<RunCompleted>().Result.State);
        Assert.Equal([1L, 2L, 3L, 4L], driver.All<StepCompleted>().Select(s => s.Step));
    }

    [Fact]
    public void Heartbeats_never_evict_in_one_process_where_the_group_cannot_shrink()
    {
        var driver = new RunMachineDriver(RunMachineDriver.Define("colm.train.trainers=2", "colm.train.steps=3", "colm.cluster.hang-timeout=1s"));
        driver.RegisterAll(); // every trainer in this process: no data-plane endpoints
        driver.Reply = (rank, message, answer) => message is TrainAssignment { Step: 2 } && rank == 1 ? null : answer;
        driver.PauseWhen = o => o is SendToTrainer { Message: TrainAssignment { Step: 2 } };
        driver.Pump();

        driver.Post(new TrainerHeartbeat(driver.State.Generation, 0, "TrainAssignment", 2, 50, 4, 3, 50));
        driver.Post(new TrainerHeartbeat(driver.State.Generation, 1, "TrainAssignment", 2, 50, 3, 3, 0));
        driver.Pump();

        Assert.Empty(driver.All<MembershipChanged>());
        Assert.Equal(RunPhase.Training, driver.State.Phase);
    }

    [Fact]
    public void A_trainer_that_joins_mid_run_is_admitted_at_the_next_step_boundary_and_copies_a_live_replica()
    {
        var driver = Started(2, "colm.train.max-trainers=3");
        driver.PauseWhen = o => o is StepStarted { Step: 2 };
        driver.Pump();

        driver.Post(new TrainerJoined(Node2, "node-2:1", Incarnation: 1));
        driver.PauseWhen = _ => false;
        driver.Pump();

        Assert.Equal("completed", driver.Single<RunCompleted>().Result.State);
        Assert.Equal([1L, 2L, 3L, 4L], driver.All<StepCompleted>().Select(s => s.Step));
        var joined = driver.Single<MembershipChanged>();
        Assert.Equal(("joined", "node-2", 3, 2L), (joined.Change, joined.Node, joined.Trainers, joined.Step));
        Assert.Equal([2], joined.Ranks.ToArray());
        // Step 2 was not interrupted: it ran with two ranks; from step 3 on, three.
        var trainersPerStep = driver.All<SendToTrainer>().Select(s => s.Message).OfType<TrainAssignment>()
            .GroupBy(t => t.Step).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal((2, 2, 3, 3), (trainersPerStep[1], trainersPerStep[2], trainersPerStep[3], trainersPerStep[4]));
        // The newcomer copied rank 0 (it holds the committed step), not a checkpoint.
        var sync = driver.All<SendToTrainer>().Where(s => s.Trainer == Node2).Select(s => s.Message).OfType<Synchronise>().Single();
        Assert.Equal((2, 0, (string?)null, 3), (sync.Rank, sync.Root, sync.CheckpointFile, sync.Peers.Length));
        Assert.Equal(driver.ReplicaOf(Node0), driver.ReplicaOf(Node2));
    }

    [Fact]
    public void Beyond_max_trainers_a_newcomer_is_a_spare_that_takes_a_lost_ranks_place()
    {
        var driver = Started(2);
        driver.PauseWhen = o => o is StepStarted { Step: 2 };
        driver.Pump();
        driver.Post(new TrainerJoined(Node2, "node-2:1", Incarnation: 1));
        driver.PauseWhen = o => o is StepStarted { Step: 3 };
        driver.Pump();
        Assert.Equal([Node0, Node1], driver.State.Ranks.Select(s => s.Key));
        Assert.Empty(driver.All<MembershipChanged>());

        KillDuringTraining(driver, Node1, step: 3);
        driver.Post(new NodeLost(Node1.Node, "left the cluster", Incarnation: 1));
        driver.Pump();

        Assert.Equal("completed", driver.Single<RunCompleted>().Result.State);
        Assert.Equal([Node0, Node2], driver.State.Ranks.Select(s => s.Key));
        Assert.Equal(["lost", "joined"], driver.All<MembershipChanged>().Select(m => m.Change));
        Assert.Equal(driver.ReplicaOf(Node0), driver.ReplicaOf(Node2));
    }

    [Fact]
    public void Below_min_trainers_the_run_waits_then_stops_with_a_checkpoint_of_the_committed_step()
    {
        var driver = Started(2, "colm.train.min-trainers=2", "colm.cluster.membership-wait=30s");
        KillDuringTraining(driver, Node1, step: 2);
        driver.Post(new NodeLost(Node1.Node, "became unreachable", Incarnation: 1));
        driver.Pump();

        Assert.Equal(RunPhase.AwaitingMembers, driver.State.Phase);
        var wait = driver.All<ArmPhaseTimer>().Last();
        Assert.Equal((RunPhase.AwaitingMembers, TimeSpan.FromSeconds(30)), (wait.Timeout.Phase, wait.After));
        Assert.Contains(driver.All<Noticed>(), n => n.Message.StartsWith("1 trainer(s) left, fewer than colm.train.min-trainers = 2; waiting up to 30s"));

        driver.Post(wait.Timeout);
        driver.Pump();

        var result = driver.Single<RunCompleted>().Result;
        Assert.Equal(("stopped", 1L), (result.State, result.Step));
        Assert.StartsWith("only 1 trainer(s) left, fewer than colm.train.min-trainers = 2", result.Error);
        Assert.Equal(1, driver.All<CheckpointTaken>().Last().Step);
        Assert.Contains(driver.All<Noticed>(), n => n.Message.Contains("fewer than colm.train.min-trainers = 2, and none joined within 30s"));
    }

    [Fact]
    public void Below_min_trainers_a_node_that_joins_within_the_wait_lets_the_run_go_on()
    {
        var driver = Started(2, "colm.train.min-trainers=2");
        KillDuringTraining(driver, Node1, step: 2);
        driver.Post(new NodeLost(Node1.Node, "became unreachable", Incarnation: 1));
        driver.Pump();
        Assert.Equal(RunPhase.AwaitingMembers, driver.State.Phase);

        driver.Post(new TrainerJoined(Node2, "node-2:1", Incarnation: 1));
        driver.Pump();

        Assert.Equal(("completed", 4L), (driver.Single<RunCompleted>().Result.State, driver.State.Step));
        Assert.Equal([1L, 2L, 3L, 4L], driver.All<StepCompleted>().Select(s => s.Step));
        Assert.Equal(driver.ReplicaOf(Node0), driver.ReplicaOf(Node2));
    }

    [Fact]
    public void When_every_trainer_is_gone_the_run_fails_after_the_wait_saying_the_last_checkpoint_is_intact()
    {
        var driver = Started(1);
        driver.PauseWhen = o => o is StepStarted { Step: 2 };
        driver.Pump();
        driver.Gone.Add(Node0);

        driver.Post(new NodeLost(Node0.Node, "became unreachable", Incarnation: 1));
        driver.PauseWhen = _ => false;
        driver.Pump();
        driver.Post(driver.All<ArmPhaseTimer>().Last().Timeout);
        driver.Pump();

        var error = driver.Single<RunFailed>().Result.Error!;
        Assert.StartsWith("only 0 trainer(s) left, fewer than colm.train.min-trainers = 1", error);
        Assert.Contains("no trainer is left to write a checkpoint", error);
    }

    [Fact]
    public void A_node_restarted_on_its_address_replaces_the_old_incarnation_whose_late_loss_then_changes_nothing()
    {
        var driver = Started(2);
        KillDuringTraining(driver, Node1, step: 2);
        // The new process (no replica yet) registers before the old one's loss is noticed.
        driver.Gone.Remove(Node1);
        driver.Restarted(Node1);
        driver.Post(new TrainerJoined(Node1, "node-1:2", Incarnation: 2));
        driver.PauseWhen = o => o is StepStarted { Step: 3 };
        driver.Pump();

        driver.Post(new NodeLost(Node1.Node, "left the cluster", Incarnation: 1));
        driver.PauseWhen = _ => false;
        driver.Pump();

        Assert.Equal("completed", driver.Single<RunCompleted>().Result.State);
        Assert.Equal([1L, 2L, 3L, 4L], driver.All<StepCompleted>().Select(s => s.Step));
        Assert.Equal([("lost", "node-1"), ("joined", "node-1")], driver.All<MembershipChanged>().Select(m => (m.Change, m.Node)));
        Assert.Equal(2L, driver.State.Registered.Single(s => s.Key == Node1).Incarnation);
        Assert.Equal(driver.ReplicaOf(Node0), driver.ReplicaOf(Node1));
    }
}
