using System.Collections.Immutable;
using Akka.Actor;
using CoLM.Training;

namespace CoLM.Cluster.Actors;

// ---- Protocol: trainer -> coordinator (the cluster singleton). Replies carry the generation
// and step of the assignment they answer; the coordinator drops any that are stale.

/// <summary>A trainer announces itself once, when it first starts.</summary>
public sealed record RegisterTrainer(IActorRef Trainer, int Rank);

/// <summary>A trainer was restarted by its supervisor; its replica is fresh and must be resynchronised.</summary>
public sealed record TrainerRestarted(IActorRef Trainer, int Rank, string Reason);

public sealed record Sketches(long Generation, long Step, int Rank, ImmutableArray<int> Ids,
    ImmutableArray<float> Losses, ImmutableArray<float> Coefficients, ImmutableArray<float> Features, TimeSpan Elapsed);

public sealed record StepDone(long Generation, long Step, int Rank, TrainOutcome Outcome);

/// <summary>The assignment failed for a reason outside this replica (peer gone, bad state); Fatal ends the run.</summary>
public sealed record StepFailed(long Generation, long Step, int Rank, string Reason, bool Fatal);

public sealed record EvalDone(long Generation, long Step, int Rank, ImmutableArray<int> Ids, EvalOutcome Outcome);

public sealed record Synchronised(long Generation, int Rank, long CompletedSteps, ulong Checksum, int SketchDimension);

public sealed record StateSaved(long Generation, long Step, int Rank);

// ---- From the process hosting the run.

/// <summary>Finish at the next step boundary with a checkpoint (Ctrl-C, or a job's time limit).</summary>
public sealed record StopRequested(string Reason);
