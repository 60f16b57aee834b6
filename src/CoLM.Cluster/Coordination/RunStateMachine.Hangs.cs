using CoLM.Cluster.Actors;

namespace CoLM.Cluster.Coordination;

/// <summary>
/// Hang detection from the trainers' heartbeats. Every rank of a generation makes the same
/// collectives in the same order, so when some ranks have waited colm.cluster.hang-timeout inside
/// collective #k, a rank that has not entered #k is holding them up: alive (it still reports)
/// but silent. It is named (rank, node, what it is doing, its last collective) and evicted like
/// a lost node, so the others go on without waiting out the collective timeout. Only in cluster
/// runs: trainers sharing one process share an in-process group that cannot shrink.
/// </summary>
public sealed partial class RunStateMachine
{
    // Observations, not state: the latest heartbeat of each rank; a coordinator that takes over starts afresh.
    private readonly Dictionary<int, TrainerHeartbeat> _heartbeats = [];

    private void OnHeartbeat(TrainerHeartbeat m)
    {
        if (m.Generation != State.Generation || m.Rank < 0 || m.Rank >= State.Ranks.Length) return;
        _heartbeats[m.Rank] = m;
        if (State.Phase is not (RunPhase.Training or RunPhase.Synchronising) || State.Ranks.Any(s => s.DataEndpoint.Length == 0)) return;

        var current = _heartbeats.Values.Where(h => h.Generation == State.Generation && h.Rank < State.Ranks.Length).ToArray();
        if (current.Length < State.Ranks.Length) return; // every rank's report is needed to tell who holds the others up
        long frontier = current.Max(h => h.CollectivesEntered);
        var waiting = current.Where(h => h.CollectivesEntered == frontier && h.CollectivesCompleted < frontier
                                         && h.WaitingSeconds >= _s.Cluster.HangTimeout.TotalSeconds).ToArray();
        if (waiting.Length == 0) return;
        var silent = current.Where(h => h.CollectivesEntered < frontier).ToArray();
        if (silent.Length == 0) return;

        string waiters = string.Join(", ", waiting.Select(h => h.Rank));
        double waited = waiting.Max(h => h.WaitingSeconds);
        var seats = silent.Select(h => State.Ranks[h.Rank]).ToArray();
        string who = string.Join("; ", silent.Select(h =>
            $"trainer rank {h.Rank} on {State.Ranks[h.Rank].Key.Node} ({h.Work} of step {h.Step} for {h.BusySeconds:0}s, " +
            $"collective #{h.CollectivesCompleted} its last completed)"));
        _heartbeats.Clear();
        LoseSeats(seats, $"{who} is silent: rank(s) {waiters} waited {waited:0}s in collective #{frontier} it has not entered " +
                         $"(colm.cluster.hang-timeout = {_s.Cluster.HangTimeout.TotalSeconds:0}s); evicted");
    }
}
