namespace CoLM.Cluster.Actors;

/// <summary>What one replica holds, as it reported before a resynchronisation.</summary>
public readonly record struct ReplicaHolding(int Rank, bool HasState, long CompletedSteps, ulong Checksum);

/// <summary>Where the replicas' state comes from after a trainer restarted.</summary>
public abstract record RecoveryPlan
{
    private RecoveryPlan()
    {
    }

    /// <summary>Every other replica copies rank <paramref name="Root"/>'s state over the collective.</summary>
    public sealed record FromReplica(int Root) : RecoveryPlan;

    /// <summary>No replica holds the committed step, but a checkpoint of it does: every replica loads it.</summary>
    public sealed record FromCheckpoint(string TrainerStateFile) : RecoveryPlan;

    /// <summary>Nothing trustworthy holds the committed step: the run must stop (the reason says why).</summary>
    public sealed record Impossible(string Reason) : RecoveryPlan;
}

/// <summary>
/// Chooses the replica that every other one copies after a restart, by evidence and never by rank
/// number: it must hold state (a restarted trainer's replica is new, so it always receives), have
/// completed exactly the last committed step (a replica that applied part of the abandoned step
/// also receives), and agree with the checksum the coordinator last saw for that step. Candidates
/// that disagree with each other mean the replicas diverged, which no copy can settle.
/// </summary>
public static class RecoverySource
{
    /// <param name="committedStep">The last step the coordinator recorded as done by every rank.</param>
    /// <param name="committedChecksum">The replicas' checksum at <paramref name="committedStep"/>, when one was taken.</param>
    /// <param name="initialStateIsValid">True before the first step of a new run: a new replica built from config is at the committed state.</param>
    /// <param name="checkpoint">The newest checkpoint on disk, if any: used when no replica qualifies and it is at the committed step.</param>
    public static RecoveryPlan Choose(long committedStep, ulong? committedChecksum, IReadOnlyCollection<ReplicaHolding> replicas,
        bool initialStateIsValid, (long Step, string TrainerStateFile)? checkpoint)
    {
        var candidates = replicas
            .Where(r => r.HasState && r.CompletedSteps == committedStep && (committedChecksum is null || r.Checksum == committedChecksum))
            .OrderBy(r => r.Rank)
            .ToArray();
        var checksums = candidates.Select(c => c.Checksum).Distinct().ToArray();
        if (checksums.Length > 1)
            return new RecoveryPlan.Impossible($"the replicas that completed step {committedStep} differ: " +
                string.Join(", ", candidates.Select(c => $"rank {c.Rank} checksum {c.Checksum:x16}")) + "; they have diverged");
        if (candidates.Length > 0) return new RecoveryPlan.FromReplica(candidates[0].Rank);
        // A restarted replica is rebuilt from config at its next Synchronise, which is the committed state only before step 1.
        if (initialStateIsValid && replicas.Where(r => !r.HasState).Select(r => (int?)r.Rank).Min() is int rebuilt)
            return new RecoveryPlan.FromReplica(rebuilt);
        if (checkpoint is { } c && c.Step == committedStep) return new RecoveryPlan.FromCheckpoint(c.TrainerStateFile);
        return new RecoveryPlan.Impossible($"no replica holds step {committedStep} any more (" +
            string.Join(", ", replicas.OrderBy(r => r.Rank).Select(Describe)) +
            (checkpoint is { } older ? $") and the newest checkpoint is of step {older.Step}" : ") and there is no checkpoint") +
            "; resume from the last checkpoint");
    }

    private static string Describe(ReplicaHolding r) => r.HasState
        ? $"rank {r.Rank} at step {r.CompletedSteps}"
        : $"rank {r.Rank} restarted";
}
