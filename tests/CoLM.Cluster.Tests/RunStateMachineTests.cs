using CoLM.Cluster.Actors;
using CoLM.Cluster.Coordination;
using CoLM.Cluster.Runs;
using CoLM.Training;

namespace CoLM.Cluster.Tests;

/// <summary>The coordinator's state machine, driven by events alone: no actor system, no tensors.</summary>
public sealed class RunStateMachineTests
{
    private static RunMachineDriver Started(params string[] extra)
    {
        var driver = new RunMachineDriver(RunMachineDriver.Define(extra));
        driver.RegisterAll();
        return driver;
    }

    private static RunResult Failure(RunMachineDriver driver) => driver.Single<RunFailed>().Result;

    [Fact]
    public void A_run_evaluates_first_takes_every_step_then_evaluates_checkpoints_and_completes()
    {
        var driver = Started();

        driver.Pump();

        var result = driver.Single<RunCompleted>().Result;
        Assert.Equal(("completed", 3L), (result.State, result.Step));
        Assert.Equal([1L, 2L, 3L], driver.All<StepCompleted>().Select(s => s.Step));
        Assert.Equal([0L, 3L], driver.All<Evaluated>().Select(e => e.Report.Step));
        Assert.Equal(3, driver.Single<CheckpointTaken>().Step);
        Assert.Equal(RunPhase.Finished, driver.State.Phase);
        Assert.Equal(3, driver.State.Step);
        Assert.Null(driver.State.InProgress);
        // The step's loss is the trainers' weighted loss sum over the coreset's weight.
        Assert.All(driver.All<StepCompleted>(), s => Assert.Equal(1.0, s.Loss, 9));
    }

    [Fact]
    public void Ranks_follow_node_then_device_order_whatever_order_trainers_register_in()
    {
        var driver = new RunMachineDriver(RunMachineDriver.Define("colm.train.trainers=3"));
        driver.Post(new TrainerJoined(new TrainerKey("node-b", 0), "b:1"));
        driver.Post(new TrainerJoined(new TrainerKey("node-a", 1), "a:2"));
        driver.Post(new TrainerJoined(new TrainerKey("node-a", 0), "a:1"));
        driver.PauseWhen = o => o is SendToTrainer;

        driver.Pump();

        Assert.Equal(["a:1", "a:2", "b:1"], driver.State.Ranks.Select(s => s.DataEndpoint));
        var sync = Assert.IsType<Synchronise>(driver.All<SendToTrainer>()[0].Message);
        Assert.Equal(["a:1", "a:2", "b:1"], sync.Peers.ToArray());
    }

    [Fact]
    public void Periodic_evaluations_and_checkpoints_come_after_their_step_in_that_order()
    {
        var driver = Started("colm.train.steps=4", "colm.train.eval-every=2", "colm.train.checkpoint-every=2");

        driver.Pump();

        var order = driver.Outputs.Select(o => o switch
        {
            StepCompleted s => $"step {s.Step}",
            Evaluated e => $"eval {e.Report.Step}",
            CheckpointTaken c => $"checkpoint {c.Step}",
            _ => null,
        }).OfType<string>();
        Assert.Equal(["eval 0", "step 1", "step 2", "eval 2", "checkpoint 2", "step 3", "step 4", "eval 4", "checkpoint 4"], order);
    }

    [Fact]
    public void Every_pool_example_of_a_large_source_is_sketched_by_exactly_one_trainer()
    {
        var driver = Started("colm.train.steps=1");

        driver.Pump();

        var assignments = driver.All<SendToTrainer>().Select(s => s.Message).OfType<PoolAssignment>().ToArray();
        Assert.Equal(2, assignments.Length);
        var sketched = assignments.SelectMany(a => a.Ids).ToArray();
        Assert.Equal(sketched.Length, sketched.Distinct().Count());
        Assert.Equal(assignments[0].ProbeSeed, assignments[1].ProbeSeed);
        // Each trainer's share of the coreset is dealt round-robin: the two differ by at most one.
        var trains = driver.All<SendToTrainer>().Select(s => s.Message).OfType<TrainAssignment>().ToArray();
        Assert.True(Math.Abs(trains[0].Ids.Length - trains[1].Ids.Length) <= 1);
        Assert.Equal(8, trains.Sum(t => t.Ids.Length));
    }

    [Fact]
    public void A_trainer_restart_during_training_retries_the_step_with_the_same_pool_and_coreset()
    {
        var driver = Started();
        bool restarted = false;
        // Rank 1 "crashes" on its first assignment of step 2; rank 0's all-reduce is aborted.
        driver.Reply = (rank, message, answer) =>
        {
            if (restarted || message is not TrainAssignment { Step: 2 } t) return answer;
            if (rank == 0) return new StepFailed(t.Generation, t.Step, 0, "all-reduce aborted", false, []);
            restarted = true;
            driver.LoseReplica(1);
            return new TrainerReplaced(new TrainerKey("node-a", 1), "injected fault");
        };

        driver.Pump();

        var step2 = driver.All<SendToTrainer>().Select(s => s.Message).OfType<TrainAssignment>().Where(t => t.Step == 2).ToArray();
        Assert.Equal(4, step2.Length);
        Assert.Equal(step2[0].Ids.ToArray(), step2[2].Ids.ToArray());
        Assert.Equal(step2[1].Ids.ToArray(), step2[3].Ids.ToArray());
        Assert.Equal(step2[0].Weights.ToArray(), step2[2].Weights.ToArray());
        Assert.True(step2[2].Generation > step2[0].Generation);
        var pools = driver.All<SendToTrainer>().Select(s => s.Message).OfType<PoolAssignment>().Where(p => p.Step == 2).ToArray();
        Assert.Equal(pools[0].Ids.ToArray(), pools[2].Ids.ToArray());
        Assert.Equal(2, driver.Single<TrainerRestartRecorded>().Step);
        var recovery = driver.Single<RecoveryCompleted>();
        Assert.Equal((1L, "replica", "rank 0"), (recovery.Step, recovery.Source, recovery.From));
        Assert.Equal("completed", driver.Single<RunCompleted>().Result.State);
        Assert.Equal([1L, 2L, 3L], driver.All<StepCompleted>().Select(s => s.Step));
    }

    [Fact]
    public void A_run_restarted_mid_step_from_its_state_bytes_continues_exactly_as_the_original()
    {
        var definition = RunMachineDriver.Define("colm.train.steps=4");
        var original = new RunMachineDriver(definition);
        original.RegisterAll();
        original.PauseWhen = o => o is SendToTrainer { Message: TrainAssignment { Step: 2 } };
        original.Pump();

        byte[] bytes = RunStateCodec.ToBytes(original.State);
        var copy = RunStateCodec.FromBytes(bytes);
        Assert.Equal(bytes, RunStateCodec.ToBytes(copy));
        Assert.Equal(RunPhase.Training, copy.Phase);
        Assert.Equal(2, copy.InProgress!.Step);

        // A machine built from the bytes gets the same trainers and the replies still on their way.
        var twin = new RunMachineDriver(definition, copy);
        twin.TakeTrainersOf(original);
        original.Outputs.Clear();
        original.PauseWhen = _ => false;
        original.Pump();
        twin.Pump();

        Assert.NotEmpty(twin.All<SendToTrainer>());
        Assert.Equal(original.SentJson(), twin.SentJson());
        Assert.Equal(RunStateCodec.ToBytes(original.State), RunStateCodec.ToBytes(twin.State));
        Assert.Equal("completed", twin.Single<RunCompleted>().Result.State);
    }

    // ---- Failure paths: each ends the run once, saying who and where ------------------------------

    [Fact]
    public void Too_few_trainers_within_the_phase_timeout_fails_naming_the_count()
    {
        var driver = new RunMachineDriver(RunMachineDriver.Define());
        driver.Post(new TrainerJoined(new TrainerKey("node-a", 0), ""));
        var timer = driver.Single<ArmPhaseTimer>();
        driver.Post(timer.Timeout);

        driver.Pump();

        Assert.StartsWith("only 1 of 2 trainers registered within", Failure(driver).Error);
    }

    [Fact]
    public void Two_trainers_claiming_one_device_fail_the_run()
    {
        var driver = new RunMachineDriver(RunMachineDriver.Define());
        driver.Post(new TrainerJoined(new TrainerKey("node-a", 0), ""));
        driver.Post(new TrainerJoined(new TrainerKey("node-a", 0), ""));

        driver.Pump();

        Assert.Equal("two trainers registered as device 0 of node-a", Failure(driver).Error);
    }

    [Fact]
    public void Replicas_whose_checksums_differ_after_a_step_stop_the_run_as_diverged()
    {
        var driver = Started();
        driver.Reply = (rank, _, answer) => answer is StepDone { Step: 2 } done && rank == 1
            ? done with { Outcome = done.Outcome with { Checksum = 42 } }
            : answer;

        driver.Pump();

        var error = Failure(driver).Error!;
        Assert.Contains("replica parameter checksums differ after step 2", error);
        Assert.Contains("rank 1 000000000000002a", error);
        Assert.Equal(1, driver.State.Step);
    }

    [Fact]
    public void Replicas_that_do_not_hold_the_runs_step_after_synchronisation_fail_and_are_never_adopted()
    {
        var driver = Started();
        driver.Reply = (_, _, answer) => answer is Synchronised s ? s with { CompletedSteps = 7 } : answer;

        driver.Pump();

        Assert.Contains("replicas do not hold the run's step 0 after synchronisation", Failure(driver).Error);
        Assert.Empty(driver.All<StepStarted>());
    }

    [Fact]
    public void A_fatal_step_failure_is_bad_input_and_ends_the_run_at_once()
    {
        var driver = Started();
        driver.Reply = (rank, message, answer) => message is PoolAssignment p && rank == 1
            ? new StepFailed(p.Generation, p.Step, 1, "data.jsonl line 7: not JSON", true, [])
            : answer;

        driver.Pump();

        var result = Failure(driver);
        Assert.True(result.BadInput);
        Assert.Equal("trainer rank 1: data.jsonl line 7: not JSON", result.Error);
    }

    [Fact]
    public void A_failed_collective_with_no_restart_behind_it_blames_the_rank_that_did_not_arrive()
    {
        var driver = Started();
        driver.Reply = (rank, message, answer) => message is TrainAssignment t && t.Step == 1
            ? rank == 0 ? new StepFailed(t.Generation, 1, 0, "timed out", false, [1]) : null
            : answer;
        driver.Pump();
        var grace = driver.Single<ArmRestartGrace>();
        driver.Post(grace.Expiry);

        driver.Pump();

        Assert.StartsWith("trainer rank(s) 1 did not arrive at the collective of step 1", Failure(driver).Error);
        Assert.Contains("reported by rank(s) 0: timed out", Failure(driver).Error);
    }

    [Fact]
    public void A_failure_whose_grace_expired_in_an_older_generation_is_ignored()
    {
        var driver = Started();
        driver.PauseWhen = o => o is StepStarted;
        driver.Pump();

        driver.Post(new RestartGraceExpired(driver.State.Generation - 1, 0, 1, "old news"));
        driver.PauseWhen = _ => false;
        driver.Pump();

        Assert.Empty(driver.All<RunFailed>());
        Assert.Equal("completed", driver.Single<RunCompleted>().Result.State);
    }

    [Fact]
    public void A_trainer_that_stopped_for_good_on_a_live_node_fails_the_run_naming_its_rank()
    {
        var driver = Started();
        driver.PauseWhen = o => o is StepStarted;
        driver.Pump();
        driver.Post(new TrainerStopped(new TrainerKey("node-a", 1), "akka://colm/user/trainer-1", NodeGone: false));

        driver.Pump();

        Assert.StartsWith("trainer rank 1 (akka://colm/user/trainer-1) stopped (it failed repeatedly) during step 1", Failure(driver).Error);
    }

    [Fact]
    public void A_phase_without_an_answer_times_out_naming_the_silent_rank_and_a_stale_timer_does_nothing()
    {
        var driver = Started();
        driver.Reply = (rank, message, answer) => message is PoolAssignment && rank == 1 ? null : answer;
        driver.Pump();
        var stale = new PhaseTimedOut(driver.State.Generation, RunPhase.Training, driver.State.Step);
        driver.Post(stale);
        driver.Pump();
        Assert.Empty(driver.All<RunFailed>());

        driver.Post(driver.All<ArmPhaseTimer>()[^1].Timeout);
        driver.Pump();

        Assert.StartsWith("no answer in 300s from trainer rank(s) 1 during Sketching of step 1", Failure(driver).Error);
    }

    [Fact]
    public void Replies_from_an_older_generation_are_dropped()
    {
        var driver = Started();
        driver.PauseWhen = o => o is StepStarted;
        driver.Pump();
        var before = driver.State;

        var outputs = driver.Machine.Handle(new StepDone(before.Generation - 1, 1, 0, new TrainOutcome(1, 1, TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero, null)));

        Assert.All(outputs, o => Assert.IsType<Logged>(o));
        Assert.Equal(before.Awaiting, driver.State.Awaiting);
    }

    [Fact]
    public void A_stop_request_ends_after_the_step_in_progress_with_an_evaluation_and_a_checkpoint()
    {
        var driver = Started("colm.train.steps=10");
        driver.PauseWhen = o => o is StepStarted { Step: 2 };
        driver.Pump();
        driver.Post(new StopRequested("SIGTERM"));
        driver.PauseWhen = _ => false;

        driver.Pump();

        var result = driver.Single<RunCompleted>().Result;
        Assert.Equal(("stopped", 2L), (result.State, result.Step));
        Assert.Equal(2, driver.Single<CheckpointTaken>().Step);
        Assert.Contains(driver.All<Noticed>(), n => n.Message.StartsWith("stopped after step 2: SIGTERM", StringComparison.Ordinal));
    }

    [Fact]
    public void A_restart_during_the_checkpoint_writes_the_checkpoint_again_and_then_continues()
    {
        var driver = Started("colm.train.steps=4", "colm.train.checkpoint-every=2");
        bool restarted = false;
        driver.Reply = (rank, message, answer) =>
        {
            if (restarted || message is not SaveState) return answer;
            restarted = true;
            driver.LoseReplica(0);
            return new TrainerReplaced(new TrainerKey("node-a", 0), "disk hiccup");
        };

        driver.Pump();

        Assert.Equal([2L, 4L], driver.All<CheckpointTaken>().Select(c => c.Step));
        Assert.Equal(3, driver.All<SendToTrainer>().Count(s => s.Message is SaveState));
        Assert.Contains(driver.All<Logged>(), l => l.Message.Contains("retrying the checkpoint of step 2", StringComparison.Ordinal));
        Assert.Equal("completed", driver.Single<RunCompleted>().Result.State);
    }

    [Fact]
    public void When_no_replica_and_no_checkpoint_hold_the_committed_step_recovery_is_impossible()
    {
        var driver = Started();
        driver.Reply = (rank, message, answer) =>
        {
            if (message is not TrainAssignment { Step: 2 } t) return answer;
            driver.LoseReplica(0);
            driver.LoseReplica(1);
            return rank == 0 ? new TrainerReplaced(new TrainerKey("node-a", 0), "boom") : new TrainerReplaced(new TrainerKey("node-a", 1), "boom");
        };

        driver.Pump();

        Assert.StartsWith("cannot recover from the trainer restart: no replica holds step 1 any more", Failure(driver).Error);
    }

    [Fact]
    public void A_restart_of_a_trainer_that_never_had_a_rank_fails_the_run()
    {
        var driver = Started();
        driver.PauseWhen = o => o is StepStarted;
        driver.Pump();
        driver.Post(new TrainerReplaced(new TrainerKey("node-q", 3), "who?"));

        driver.Pump();

        Assert.Equal("trainer 3 on node-q restarted but was never part of this run", Failure(driver).Error);
    }

    [Fact]
    public void Whatever_a_handler_throws_ends_the_run_with_its_cause()
    {
        var driver = Started();
        driver.PauseWhen = o => o is StepStarted;
        driver.Pump();

        driver.Post(new CoordinatorFaulted("checkpoints/: No space left on device", BadInput: true));
        driver.Pump();

        var result = Failure(driver);
        Assert.True(result.BadInput);
        Assert.Equal("checkpoints/: No space left on device", result.Error);
        // Nothing more happens once finished.
        Assert.Empty(driver.Machine.Handle(new NodeLost("node-a", "left the cluster")).OfType<RunFailed>());
    }

    [Fact]
    public void A_failed_step_with_no_restart_and_no_missing_peer_fails_naming_the_rank_that_reported_it()
    {
        var driver = Started();
        driver.Reply = (rank, message, answer) => message is TrainAssignment t && rank == 1
            ? new StepFailed(t.Generation, t.Step, 1, "CUDA out of memory", false, [])
            : answer;
        driver.Pump();
        Assert.Empty(driver.All<RunFailed>());

        driver.Post(driver.Single<ArmRestartGrace>().Expiry);
        driver.Pump();

        Assert.Equal("trainer rank 1 failed at step 1: CUDA out of memory", Failure(driver).Error);
    }

    [Fact]
    public void A_restart_during_an_evaluation_evaluates_again_at_the_same_step_then_goes_on()
    {
        var driver = Started("colm.train.steps=2", "colm.train.eval-every=1");
        bool restarted = false;
        driver.Reply = (rank, message, answer) =>
        {
            if (restarted || message is not EvalAssignment { Step: 1 } || rank != 1) return answer;
            restarted = true;
            driver.LoseReplica(1);
            return new TrainerReplaced(new TrainerKey("node-a", 1), "injected fault");
        };

        driver.Pump();

        Assert.Equal([0L, 1L, 2L], driver.All<Evaluated>().Select(e => e.Report.Step));
        Assert.Contains(driver.All<Logged>(), l => l.Message.Contains("retrying the evaluation after step 1", StringComparison.Ordinal));
        Assert.Equal(("completed", 2L), (driver.Single<RunCompleted>().Result.State, driver.Single<RunCompleted>().Result.Step));
    }

    [Fact]
    public void When_no_replica_holds_the_committed_step_the_replicas_reload_it_from_the_checkpoint_of_that_step()
    {
        var driver = Started("colm.train.steps=3", "colm.train.checkpoint-every=2");
        bool lost = false;
        driver.Reply = (rank, message, answer) =>
        {
            if (lost || message is not TrainAssignment { Step: 3 }) return answer;
            if (rank == 0) return null;
            lost = true;
            driver.LoseReplica(0);
            driver.LoseReplica(1);
            return new TrainerReplaced(new TrainerKey("node-a", 1), "both replicas lost");
        };
        driver.PauseWhen = o => o is PhaseChanged { To: RunPhase.Recovering };
        driver.Pump();
        // Rank 0 never answers its abandoned step; it restarts too.
        driver.PauseWhen = _ => false;
        driver.Post(new TrainerReplaced(new TrainerKey("node-a", 0), "both replicas lost"));

        driver.Pump();

        var reload = driver.All<SendToTrainer>().Select(s => s.Message).OfType<Synchronise>().Last(s => s.CheckpointFile is not null);
        Assert.EndsWith("step-000002/trainer-state.bin", reload.CheckpointFile!.Replace('\\', '/'), StringComparison.Ordinal);
        Assert.Contains(driver.All<Noticed>(), n => n.Message.StartsWith("no replica holds step 2 any more; reloading it from", StringComparison.Ordinal));
        Assert.Equal(("checkpoint", 2L), (driver.Single<RecoveryCompleted>().Source, driver.Single<RecoveryCompleted>().Step));
        Assert.Equal("completed", driver.Single<RunCompleted>().Result.State);
    }

    [Fact]
    public void A_handler_that_throws_ends_the_run_naming_the_event_and_trains_no_one()
    {
        var driver = Started();
        // A sketch whose coefficients do not fit its ids (a bug in a trainer): building the pool's features throws.
        driver.Reply = (_, _, answer) => answer is Sketches s ? s with { Coefficients = [1f] } : answer;

        driver.Pump();

        Assert.StartsWith("the coordinator failed handling Sketches:", Failure(driver).Error);
        Assert.Empty(driver.All<SendToTrainer>().Where(m => m.Message is TrainAssignment));
    }
}
