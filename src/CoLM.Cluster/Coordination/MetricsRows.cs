using System.Text.Json.Serialization;
using CoLM.Cluster.Runs;

namespace CoLM.Cluster.Coordination;

// The lines of RUN/metrics.jsonl, one record per kind (camelCase JSON, "kind" first). Readers:
// bench quality and bench cluster, the system tests, and anyone plotting a run.

/// <summary>One committed optimizer step.</summary>
/// <param name="Phases">Seconds per phase as the coordinator saw them (sketch, select, train, allreduce).</param>
/// <param name="Selected">Coreset examples per source.</param>
/// <param name="TrainerSeconds">The slowest trainer's own compute, beside the phase times (which add messaging and waiting).</param>
/// <param name="CoresetDigest">The coreset's fingerprint (<see cref="StepPlanner.Digest"/>).</param>
/// <param name="Tokens">Target tokens trained on (the loss's), over all ranks; <paramref name="TokensPerSecond"/> over the step's wall time.</param>
/// <param name="GradNorm">The global gradient's L2 norm before clipping (colm.train.grad-clip).</param>
/// <param name="Ranks">Each rank's own times and its process's peak memory (<see cref="RankReport"/>).</param>
public sealed record StepRow(
    long Step, double Loss, double Lr, int Samples, double SamplesPerSecond, double ElapsedSeconds, double StepSeconds,
    IReadOnlyDictionary<string, double> Phases, IReadOnlyDictionary<string, int> Selected, int DegenerateFeatures, int SmallLeftOut,
    long Generation, TrainerSeconds TrainerSeconds, string CoresetDigest, int Tokens, double TokensPerSecond, double GradNorm,
    IReadOnlyList<RankReport> Ranks)
{
    [JsonPropertyOrder(-1)]
    public string Kind => "step";
}

public sealed record TrainerSeconds(double Sketch, double Compute, double Optimizer);

/// <summary>One held-out evaluation; the means leave held-out-only sources out.</summary>
public sealed record EvalRow(long Step, double ElapsedSeconds, double MeanAccuracy, double MeanLoss, IReadOnlyDictionary<string, SourceScore> Sources)
{
    [JsonPropertyOrder(-1)]
    public string Kind => "eval";
}

/// <summary>
/// A sealed checkpoint; <paramref name="Path"/> is relative to the run directory. <paramref name="Bytes"/>:
/// its files' size; <paramref name="PauseSeconds"/>: how long training paused for it (the in-memory
/// copy when it was written in the background, the whole write otherwise); <paramref name="ElapsedSeconds"/>:
/// the run clock when it was sealed.
/// </summary>
public sealed record CheckpointRow(long Step, string Path, long Bytes, double PauseSeconds, double ElapsedSeconds)
{
    [JsonPropertyOrder(-1)]
    public string Kind => "checkpoint";
}

/// <summary>A trainer restarted by its supervisor; <paramref name="Step"/> is the step that is retried.</summary>
public sealed record RestartRow(int Rank, long Step, string Reason)
{
    [JsonPropertyOrder(-1)]
    public string Kind => "restart";
}

/// <summary>Every replica holds <paramref name="Step"/> again after a trainer restart or a lost node, <paramref name="Seconds"/> after the first of them.</summary>
/// <param name="Source">"replica" (copied from a live peer over the data plane) or "checkpoint" (reloaded from disk).</param>
/// <param name="From">Which: "rank R", or the checkpoint file.</param>
public sealed record RecoveryRow(long Step, long Generation, string Source, string From, double Seconds)
{
    [JsonPropertyOrder(-1)]
    public string Kind => "recovery";
}

/// <summary>
/// The run's membership changed after step <paramref name="Step"/>: <paramref name="Change"/> "lost"
/// (a node's trainers left; <paramref name="Ranks"/> the ranks they held) or "joined" (admitted at a
/// step boundary; the ranks dealt to them); <paramref name="Trainers"/> train from generation
/// <paramref name="Generation"/> on.
/// </summary>
public sealed record MembershipRow(long Step, long Generation, string Change, string Node, IReadOnlyList<int> Ranks, int Trainers, string Reason)
{
    [JsonPropertyOrder(-1)]
    public string Kind => "membership";
}

/// <summary>
/// The whole run restarted itself from a checkpoint after a failure (colm.train.max-failures):
/// <paramref name="Failure"/> counts the failures so far, <paramref name="FailedAfterStep"/> is the last step the
/// failed attempt committed, <paramref name="FromStep"/> is the
/// checkpoint's step (the newest on disk; one that does not verify is skipped and said so).
/// </summary>
public sealed record RunRestartRow(int Failure, long FailedAfterStep, long FromStep, string Error)
{
    [JsonPropertyOrder(-1)]
    public string Kind => "run-restart";
}
