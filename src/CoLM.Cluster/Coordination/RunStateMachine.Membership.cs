using System.Collections.Immutable;
using CoLM.Cluster.Actors;

namespace CoLM.Cluster.Coordination;

/// <summary>
/// Elastic membership. A lost node's trainers leave the run: the survivors abandon the step in
/// progress (nothing of it is committed), the next generation is formed from the members left,
/// and the step is redone with the same pool and the same coreset size, dealt over fewer ranks.
/// A trainer that joins mid-run is admitted at the next step boundary and copies a live replica.
/// Below colm.train.min-trainers the run waits colm.cluster.membership-wait for members, then
/// stops with a checkpoint (or fails, when no trainer is left to write one).
/// <para><see cref="RunState.Registered"/> is the membership; <see cref="RunState.Ranks"/> the
/// current generation's layout, re-formed from it by <see cref="NextRanks"/> at each new generation.</para>
/// </summary>
public sealed partial class RunStateMachine
{
    /// <summary>
    /// The ranks of the next generation: the current ranks still registered, in their order (so a
    /// generation without a membership change deals the same ranks), then newcomers in (node,
    /// device) order, up to colm.train.max-trainers.
    /// </summary>
    private ImmutableArray<TrainerSeat> NextRanks()
    {
        var registered = State.Registered.ToHashSet();
        var kept = State.Ranks.Where(registered.Contains);
        var newcomers = State.Registered.Except(State.Ranks)
            .OrderBy(s => s.Key.Node, StringComparer.Ordinal).ThenBy(s => s.Key.LocalIndex);
        return [.. kept.Concat(newcomers).Take(_s.Train.MaxTrainersAdmitted)];
    }

    private void OnNodeLost(NodeLost m)
    {
        var gone = State.Registered.Where(s => s.Key.Node == m.Node && (m.Incarnation == 0 || s.Incarnation == m.Incarnation)).ToArray();
        if (gone.Length == 0 || State.Phase == RunPhase.Finished) return;
        LoseSeats(gone, $"node {m.Node} {m.What}");
    }

    private void OnTrainerStopped(TrainerStopped m)
    {
        if (State.Phase == RunPhase.Finished) return;
        var seat = m.Trainer is { } key ? State.Registered.FirstOrDefault(s => s.Key == key) : null;
        if (m.NodeGone)
        {
            // Usually the node's loss was seen first and the seat is gone already.
            if (seat is not null) LoseSeats([seat], $"{seat.Key} stopped (its node is gone)");
            return;
        }
        string who = seat is not null && RankOf(seat.Key) is { } rank ? $"trainer rank {rank} ({m.Path})" : $"trainer {m.Path}";
        Fail($"{who} stopped (it failed repeatedly) during step {State.Step + 1}; the last checkpoint in {_def.CheckpointsPath} is intact");
    }

    /// <summary>
    /// <paramref name="gone"/> leave the membership. Before ranks are dealt out the run simply waits
    /// for others; afterwards the duty in progress is abandoned and the survivors re-form.
    /// </summary>
    private void LoseSeats(TrainerSeat[] gone, string why)
    {
        var lostRanks = gone.Select(s => RankOf(s.Key)).OfType<int>().Order().ToImmutableArray();
        State = State with { Registered = State.Registered.RemoveRange(gone) };
        if (State.Phase == RunPhase.WaitingForTrainers)
        {
            Log(RunLogLevel.Warning, $"{why}: {string.Join(", ", gone.Select(s => s.Key))} left before the run started " +
                                     $"({State.Registered.Length}/{WorldSize} registered)");
            return;
        }
        if (lostRanks.IsEmpty)
        {
            Log(RunLogLevel.Info, $"{why}: spare trainer(s) {string.Join(", ", gone.Select(s => s.Key))} left");
            return;
        }

        int left = NextRanks().Length;
        string redo = State.Phase switch
        {
            RunPhase.Evaluating => $"redoing the evaluation after step {State.Step}",
            RunPhase.Checkpointing => $"redoing the checkpoint of step {State.Step}",
            RunPhase.AwaitingMembers => "still waiting for members",
            _ => $"redoing step {State.Step + 1}",
        };
        Emit(new Noticed($"{why}: lost trainer rank(s) {string.Join(", ", lostRanks)}; going on with {left} trainer(s) from step {State.Step}, {redo}"));
        Emit(new MembershipChanged(State.Step, State.Generation, "lost", gone[0].Key.Node, lostRanks, left, why));
        _recoveryStartedAt ??= _clock.GetTimestamp();

        if (State.Phase == RunPhase.AwaitingMembers) return;
        // Survivors blocked in a collective with a lost rank are woken now, not at the collective timeout.
        foreach (int rank in State.AllRanks.Except(lostRanks))
            Send(rank, new AbortGeneration(State.Generation, $"{why}: rank(s) {string.Join(", ", lostRanks)} left the run"));
        AbandonDutyInProgress();
        State = State with { Awaiting = State.Awaiting.Except(lostRanks) };
        Emit(new CancelRestartGrace());
        // Recovering drops every reply it gets; the next generation starts when the survivors are quiet.
        Transition(RunPhase.Recovering, State.Awaiting);
        ResumeAfterRecoveryIfQuiet();
    }

    /// <summary>
    /// After a member was lost mid-training, replicas that hold the abandoned step applied the full
    /// all-reduced gradient (an all-reduce completes only once every rank contributed), so the
    /// step is committed from them rather than lost: the others copy them. Replicas that disagree
    /// have diverged and the run stops. Returns false when it failed the run.
    /// </summary>
    private bool RollForwardAbandonedStep()
    {
        if (State.Abandoned is not { } abandoned) return true;
        State = State with { Abandoned = null };
        var ahead = State.Inspected.Values.Where(r => r.HasState && r.CompletedSteps == abandoned.Step).ToArray();
        if (ahead.Length == 0 || abandoned.Step != State.Step + 1) return true;
        if (ahead.Select(r => r.Checksum).Distinct().Count() > 1)
        {
            Fail($"the replicas that applied step {abandoned.Step} differ: " + string.Join(", ", ahead.Select(r => $"rank {r.Rank} checksum {r.Checksum:x16}")) +
                 $"; they have diverged. The last checkpoint in {_def.CheckpointsPath} is intact");
            return false;
        }
        Log(RunLogLevel.Info, $"rank(s) {string.Join(", ", ahead.Select(r => r.Rank))} applied step {abandoned.Step} before the member was lost: it is committed from them");
        CommitStep(abandoned, ahead[0].Checksum);
        return true;
    }

    /// <summary>
    /// The interrupted duty goes back to the front of the agenda. An abandoned step changed nothing
    /// committed (its pool and selection live in InProgress), so the retry draws the same pool and
    /// makes the same selection: the step is a pure function of state + seed.
    /// </summary>
    private void AbandonDutyInProgress()
    {
        // A step abandoned in training may have been applied by some replicas (their all-reduce
        // finished before the member was lost): kept, so recovery can commit it from them.
        if (State.Phase == RunPhase.Training && State.InProgress is { Selection: not null } training)
            State = State with { Abandoned = training };
        if (State.Phase is RunPhase.Sketching or RunPhase.Training or RunPhase.Evaluating or RunPhase.Checkpointing && State.Current is { } interrupted)
            State = State with { Agenda = State.Agenda.Insert(0, interrupted), Current = null };
        State = State with { InProgress = null };
    }

    private void OnJoinedMidRun(TrainerJoined m)
    {
        if (State.Phase == RunPhase.Finished) return;
        if (State.Registered.FirstOrDefault(s => s.Key == m.Trainer) is { } existing)
        {
            if (existing.Incarnation == m.Incarnation)
            {
                Fail($"two trainers registered as device {m.Trainer.LocalIndex} of {m.Trainer.Node}");
                return;
            }
            // The node restarted on the same address before its loss was noticed: the old process is gone.
            LoseSeats([.. State.Registered.Where(s => s.Key.Node == m.Trainer.Node && s.Incarnation == existing.Incarnation)],
                $"node {m.Trainer.Node} restarted");
            if (State.Phase == RunPhase.Finished) return;
        }
        State = State with { Registered = State.Registered.Add(new TrainerSeat(m.Trainer, m.DataEndpoint, m.Incarnation)) };
        bool admitted = NextRanks().Any(s => s.Key == m.Trainer);
        Log(RunLogLevel.Info, admitted
            ? $"{m.Trainer} joined the run; it is admitted at the next step boundary"
            : $"{m.Trainer} joined the run as a spare (colm.train.max-trainers = {_s.Train.MaxTrainersAdmitted} are training)");
        // Enough members again: the next generation admits them (its phase timer replaces the wait's).
        if (State.Phase == RunPhase.AwaitingMembers && NextRanks().Length >= _s.Train.MinTrainers) StartInspection();
    }

    /// <summary>At a step boundary: true when newcomers are waiting, and then their admission has begun.</summary>
    private bool AdmitNewcomersAtStepBoundary()
    {
        if (NextRanks().SequenceEqual(State.Ranks)) return false;
        StartInspection();
        return true;
    }

    /// <summary>Says which nodes the next generation (<paramref name="next"/>) admits, if any.</summary>
    private void AnnounceNewcomers(ImmutableArray<TrainerSeat> next)
    {
        foreach (var node in next.Except(State.Ranks).GroupBy(s => s.Key.Node, StringComparer.Ordinal))
        {
            var ranks = next.Select((s, r) => (s, r)).Where(x => x.s.Key.Node == node.Key).Select(x => x.r).ToImmutableArray();
            Emit(new Noticed($"node {node.Key} admitted with trainer rank(s) {string.Join(", ", ranks)}: {next.Length} trainer(s) from step {State.Step + 1}; " +
                             "it copies a live replica"));
            Emit(new MembershipChanged(State.Step, State.Generation + 1, "joined", node.Key, ranks, next.Length, "joined the cluster"));
        }
    }

    private void AwaitMembers()
    {
        int left = NextRanks().Length;
        var wait = _s.Cluster.MembershipWait;
        Emit(new Noticed($"{left} trainer(s) left, fewer than colm.train.min-trainers = {_s.Train.MinTrainers}; " +
                         $"waiting up to {wait.TotalSeconds:0}s (colm.cluster.membership-wait) for nodes to join"));
        Transition(RunPhase.AwaitingMembers, []);
        Emit(new ArmPhaseTimer(new PhaseTimedOut(State.Generation, RunPhase.AwaitingMembers, State.Step), wait));
    }

    private void OnMembershipWaitExpired(PhaseTimedOut m)
    {
        if (m.Generation != State.Generation || m.Step != State.Step) return;
        int left = NextRanks().Length;
        string why = $"only {left} trainer(s) left, fewer than colm.train.min-trainers = {_s.Train.MinTrainers}, " +
                     $"and none joined within {_s.Cluster.MembershipWait.TotalSeconds:0}s (colm.cluster.membership-wait)";
        if (left == 0)
        {
            Fail($"{why}; no trainer is left to write a checkpoint. The last checkpoint in {_def.CheckpointsPath} is intact; resume with --resume {_def.RunPath}");
            return;
        }
        // The survivors re-form only to write a checkpoint of the committed step; the run then stops.
        State = State with { StopReason = why, StoppedShort = true };
        StartInspection();
    }
}
