using System.Collections.Immutable;
using CoLM.Cluster.Actors;

namespace CoLM.Cluster.Coordination;

/// <summary>
/// How a run starts: trainers register until colm.train.trainers are present, ranks are dealt
/// out, and every replica is synchronised to the committed step (from rank 0's fresh replica, or
/// the checkpoint the run resumes) before the agenda begins. A recovery ends here too.
/// </summary>
public sealed partial class RunStateMachine
{
    private void OnJoined(TrainerJoined m)
    {
        if (State.Phase != RunPhase.WaitingForTrainers)
        {
            OnJoinedMidRun(m);
            return;
        }
        if (State.Registered.Any(s => s.Key == m.Trainer))
        {
            Fail($"two trainers registered as device {m.Trainer.LocalIndex} of {m.Trainer.Node}");
            return;
        }
        State = State with { Registered = State.Registered.Add(new TrainerSeat(m.Trainer, m.DataEndpoint, m.Incarnation)) };
        Log(RunLogLevel.Info, $"{m.Trainer} registered ({State.Registered.Length}/{WorldSize})");
        if (State.Registered.Length > WorldSize)
        {
            Fail($"{State.Registered.Length} trainers registered but colm.train.trainers = {WorldSize}");
            return;
        }
        if (State.Registered.Length < WorldSize) return;

        // Ranks in (node address, device) order: deterministic for a given membership, and the devices of one node stay adjacent.
        var ranks = State.Registered.OrderBy(s => s.Key.Node, StringComparer.Ordinal).ThenBy(s => s.Key.LocalIndex).ToImmutableArray();
        State = State with
        {
            Ranks = ranks,
            Generation = State.Generation + 1,
            Agenda = State.Resumed ? [Duty.Step] : [Duty.Evaluate, Duty.Step],
        };
        Log(RunLogLevel.Info, "ranks: " + string.Join(", ", ranks.Select((s, r) => $"{r} = {s.Key}")));
        StartSynchronise(root: 0, _def.ResumeFrom?.TrainerState);
    }

    /// <summary>Starts the current generation: every replica joins it and copies <paramref name="root"/> (or loads <paramref name="checkpointFile"/>).</summary>
    private void StartSynchronise(int root, string? checkpointFile)
    {
        State = State with { Synced = ImmutableSortedDictionary<int, Synchronised>.Empty, NotArrived = [], ReportedFailure = [] };
        Transition(RunPhase.Synchronising, State.AllRanks);
        var peers = State.Ranks.Select(s => s.DataEndpoint).ToImmutableArray();
        foreach (int rank in State.AllRanks) Send(rank, new Synchronise(State.Generation, rank, root, checkpointFile, peers));
    }

    private void OnSynchronised(Synchronised m)
    {
        if (!Accept(m.Generation, m.Rank, RunPhase.Synchronising)) return;
        State = State with { Synced = State.Synced.SetItem(m.Rank, m) };
        if (!State.Awaiting.IsEmpty) return;
        var checksums = State.Synced.Values.Select(s => s.Checksum).Distinct().ToArray();
        if (checksums.Length != 1 || State.Synced.Values.Any(s => s.CompletedSteps != State.Step))
        {
            // Never adopt the replicas' step count: a run that silently went back to an older state
            // would report steps twice and end "completed" with other parameters.
            string where = _def.ResumeFrom is { } resume && State.Step == resume.Step ? $" (checkpoint {resume.Directory})" : "";
            Fail($"replicas do not hold the run's step {State.Step} after synchronisation{where}: " + string.Join(", ",
                State.Synced.Values.Select(s => $"rank {s.Rank} step {s.CompletedSteps} checksum {s.Checksum:x16}")));
            return;
        }
        State = State with { KnownChecksum = new CommittedChecksum(State.Step, checksums[0]) };
        Emit(new ReplicasSynchronised(State.Step));
        if (_recoveryStartedAt is { } since && _recoverySource is var (source, from))
            Emit(new RecoveryCompleted(State.Step, State.Generation, source, from, _clock.GetElapsedTime(since)));
        _recoveryStartedAt = null;
        _recoverySource = null;
        RunAgenda();
    }
}
