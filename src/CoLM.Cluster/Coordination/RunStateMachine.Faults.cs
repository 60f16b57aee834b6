using System.Collections.Immutable;
using CoLM.Cluster.Actors;

namespace CoLM.Cluster.Coordination;

/// <summary>
/// What the run does when something goes wrong: a restarted trainer is resynchronised from a
/// replica that holds the committed step (chosen by evidence, <see cref="RecoverySource"/>) and
/// the interrupted duty is done again; a rank that hangs, a phase that gets no answer, or replicas
/// that diverge end the run with a message that names who and where. Lost and joining members
/// are in RunStateMachine.Membership.cs.
/// </summary>
public sealed partial class RunStateMachine
{
    private void HandleFault(IRunEvent e)
    {
        switch (e)
        {
            case TrainerReplaced m: OnTrainerReplaced(m); break;
            case ReplicaInspected m: OnReplicaInspected(m); break;
            case StepFailed m: OnStepFailed(m); break;
            case RestartGraceExpired m: OnRestartGraceExpired(m); break;
            case TrainerStopped m: OnTrainerStopped(m); break;
            case NodeLost m: OnNodeLost(m); break;
            case PhaseTimedOut m: OnPhaseTimedOut(m); break;
            case CoordinatorFaulted m: Fail(m.Error, m.BadInput); break;
            case TrainerHeartbeat m: OnHeartbeat(m); break;
            default: throw new ArgumentException($"not an event of the run: {e.GetType().Name}", nameof(e));
        }
    }

    private void OnTrainerReplaced(TrainerReplaced m)
    {
        // Before ranks are dealt out the new incarnation simply stands in for the old (the shell sends to the newest).
        if (State.Phase is RunPhase.Finished or RunPhase.WaitingForTrainers) return;
        if (RankOf(m.Trainer) is not { } rank)
        {
            Fail($"{m.Trainer} restarted but was never part of this run");
            return;
        }
        string retry = State.Phase switch
        {
            RunPhase.Evaluating => $"the evaluation after step {State.Step}",
            RunPhase.Checkpointing => $"the checkpoint of step {State.Step}",
            _ => $"step {State.Step + 1}",
        };
        Log(RunLogLevel.Warning, $"trainer rank {rank} restarted ({m.Reason}); resynchronising and retrying {retry}");
        Emit(new Noticed($"trainer rank {rank} restarted ({m.Reason}); resynchronising from a replica that holds step {State.Step} and retrying {retry}"));
        Emit(new TrainerRestartRecorded(rank, State.Step + 1, m.Reason));
        _recoveryStartedAt ??= _clock.GetTimestamp();

        AbandonDutyInProgress();
        State = State with { Awaiting = State.Awaiting.Remove(rank) };
        Emit(new CancelRestartGrace());
        // Recovering drops every reply it gets; the resynchronisation starts the next generation.
        Transition(RunPhase.Recovering, State.Awaiting);
        ResumeAfterRecoveryIfQuiet();
    }

    /// <summary>The rank dealt to <paramref name="trainer"/>, or null when it has none.</summary>
    public int? RankOf(TrainerKey trainer)
    {
        for (int r = 0; r < State.Ranks.Length; r++)
            if (State.Ranks[r].Key == trainer) return r;
        return null;
    }

    private void ResumeAfterRecoveryIfQuiet()
    {
        // Peers that were mid-assignment answer (usually StepFailed: their all-reduce was
        // aborted) before anyone starts the new generation's collectives.
        if (State.Phase != RunPhase.Recovering || !State.Awaiting.IsEmpty) return;
        if (NextRanks().Length < _s.Train.MinTrainers)
        {
            AwaitMembers();
            return;
        }
        StartInspection();
    }

    /// <summary>
    /// Starts a new generation with the members now registered (<see cref="NextRanks"/>): every
    /// replica reports what it holds, then all copy the one chosen by evidence.
    /// </summary>
    private void StartInspection()
    {
        var next = NextRanks();
        AnnounceNewcomers(next);
        State = State with { Generation = State.Generation + 1, Ranks = next, Inspected = ImmutableSortedDictionary<int, ReplicaInspected>.Empty };
        Transition(RunPhase.Inspecting, State.AllRanks);
        foreach (int rank in State.AllRanks) Send(rank, new InspectReplica(State.Generation, rank));
    }

    private void OnReplicaInspected(ReplicaInspected m)
    {
        if (!Accept(m.Generation, m.Rank, RunPhase.Inspecting)) return;
        State = State with { Inspected = State.Inspected.SetItem(m.Rank, m) };
        if (!State.Awaiting.IsEmpty) return;
        if (!RollForwardAbandonedStep()) return;
        var latest = State.LastCheckpoint;
        var plan = RecoverySource.Choose(State.Step, State.KnownChecksum is { } known && known.Step == State.Step ? known.Checksum : null,
            State.Inspected.Values.Select(r => new ReplicaHolding(r.Rank, r.HasState, r.CompletedSteps, r.Checksum)).ToArray(),
            initialStateIsValid: State.Step == 0 && !State.Resumed,
            latest is null ? null : (latest.Step, latest.TrainerState));
        switch (plan)
        {
            case RecoveryPlan.FromReplica(var root):
                Log(RunLogLevel.Info, $"recovery: every replica copies rank {root} (it holds step {State.Step})");
                _recoverySource = ("replica", $"rank {root}");
                StartSynchronise(root, checkpointFile: null);
                break;
            case RecoveryPlan.FromCheckpoint(var file):
                Emit(new Noticed($"no replica holds step {State.Step} any more; reloading it from {file}"));
                _recoverySource = ("checkpoint", file);
                StartSynchronise(0, file);
                break;
            case RecoveryPlan.Impossible(var reason):
                Fail($"cannot recover from the trainer restart: {reason} in {_def.CheckpointsPath}");
                break;
        }
    }

    private void OnStepFailed(StepFailed m)
    {
        if (m.Fatal)
        {
            Fail($"trainer rank {m.Rank}: {m.Reason}", badInput: true);
            return;
        }
        if (State.Phase == RunPhase.Recovering)
        {
            State = State with { Awaiting = State.Awaiting.Remove(m.Rank) };
            ResumeAfterRecoveryIfQuiet();
            return;
        }
        if (m.Generation != State.Generation || !State.Awaiting.Contains(m.Rank)) return;
        State = State with
        {
            Awaiting = State.Awaiting.Remove(m.Rank),
            ReportedFailure = State.ReportedFailure.Add(m.Rank),
            NotArrived = State.NotArrived.Union(m.NotArrived.Where(r => r != m.Rank)),
        };
        // Usually a peer's all-reduce was aborted because another trainer crashed; that
        // trainer's restart may arrive after this (different senders, no ordering). Give it a
        // grace period; with no restart behind it the run cannot make progress.
        Emit(new ArmRestartGrace(new RestartGraceExpired(State.Generation, m.Rank, m.Step, m.Reason), _s.Cluster.RestartGrace));
    }

    private void OnRestartGraceExpired(RestartGraceExpired m)
    {
        if (m.Generation != State.Generation || State.Phase == RunPhase.Finished) return;
        if (!State.NotArrived.IsEmpty)
        {
            // Blame the rank its peers waited for, not the peer that noticed.
            Fail($"trainer rank(s) {string.Join(", ", State.NotArrived)} did not arrive at the collective of step {m.Step} within " +
                 $"{_s.Cluster.CollectiveTimeout.TotalSeconds:0}s (colm.cluster.collective-timeout): hung or too slow; " +
                 $"reported by rank(s) {string.Join(", ", State.ReportedFailure)}: {m.Reason}. The last checkpoint in {_def.CheckpointsPath} is intact");
            return;
        }
        Fail($"trainer rank {m.Rank} failed at step {m.Step}: {m.Reason}");
    }

    private void OnPhaseTimedOut(PhaseTimedOut m)
    {
        var timeout = _s.Cluster.PhaseTimeout.TotalSeconds;
        if (m.Phase == RunPhase.AwaitingMembers && State.Phase == RunPhase.AwaitingMembers)
        {
            OnMembershipWaitExpired(m);
            return;
        }
        if (m.Phase == RunPhase.WaitingForTrainers && State.Phase == RunPhase.WaitingForTrainers)
        {
            Fail($"only {State.Registered.Length} of {WorldSize} trainers registered within {timeout:0}s");
            return;
        }
        if (m.Generation != State.Generation || m.Phase != State.Phase || m.Step != State.Step || State.Awaiting.IsEmpty) return;
        Fail($"no answer in {timeout:0}s from trainer rank(s) {string.Join(", ", State.Awaiting)} " +
             $"during {State.Phase} of step {State.Step + 1}; the last checkpoint in {_def.CheckpointsPath} is intact");
    }
}
