using System.Collections.Immutable;
using CoLM.Cluster.Actors;
using CoLM.Cluster.Runs;
using CoLM.Selection;

namespace CoLM.Cluster.Coordination;

// ---- Events in. The trainers' replies (Sketches, StepDone, EvalDone, Synchronised,
// ReplicaInspected, StateSaved, StepFailed) and StopRequested are events as they arrive; the
// records below are what the shell observes itself (membership, timers, storage).

/// <summary>Something <see cref="RunStateMachine"/> reacts to.</summary>
public interface IRunEvent;

/// <summary>A trainer announced itself (its first start); <paramref name="Incarnation"/> is its node process's unique id.</summary>
public sealed record TrainerJoined(TrainerKey Trainer, string DataEndpoint, long Incarnation = 0) : IRunEvent;

/// <summary>A trainer was restarted by its supervisor; its replica is new and must be resynchronised.</summary>
public sealed record TrainerReplaced(TrainerKey Trainer, string Reason) : IRunEvent;

/// <summary>
/// A trainer stopped for good: its node is gone (<paramref name="NodeGone"/>) or it failed
/// repeatedly. <paramref name="Trainer"/> is null when the shell does not know it.
/// </summary>
public sealed record TrainerStopped(TrainerKey? Trainer, string Path, bool NodeGone) : IRunEvent;

/// <summary>
/// A cluster member is unreachable or removed (<paramref name="What"/> says which).
/// <paramref name="Incarnation"/>: the lost process's unique id, so a node restarted on the same
/// address is not mistaken for the one that died (0: whichever incarnation registered).
/// </summary>
public sealed record NodeLost(string Node, string What, long Incarnation = 0) : IRunEvent;

/// <summary>The checkpoint the machine asked for (<see cref="CompleteCheckpoint"/>) is on disk.</summary>
public sealed record CheckpointWritten(CheckpointPaths Checkpoint) : IRunEvent;

/// <summary>The phase timer set on entering <paramref name="Phase"/> fired.</summary>
public sealed record PhaseTimedOut(long Generation, RunPhase Phase, long Step) : IRunEvent;

/// <summary>A trainer reported a failed assignment and no trainer restart followed within colm.cluster.restart-grace.</summary>
public sealed record RestartGraceExpired(long Generation, int Rank, long Step, string Reason) : IRunEvent;

/// <summary>The shell failed carrying out an output (a checkpoint it could not write): the run ends with this error.</summary>
public sealed record CoordinatorFaulted(string Error, bool BadInput) : IRunEvent;

// ---- Outputs: commands the shell carries out, and records for the recorder (metrics, report,
// telemetry, progress). The machine decides; it never writes or sends itself.

public interface IRunOutput;

/// <summary>Send <paramref name="Message"/> to <paramref name="Trainer"/>, which holds <paramref name="Rank"/> when it is sent.</summary>
public sealed record SendToTrainer(int Rank, TrainerKey Trainer, IClusterMessage Message) : IRunOutput;

/// <summary>(Re)arm the single phase timer: <paramref name="Timeout"/> arrives after <paramref name="After"/> unless re-armed or cancelled.</summary>
public sealed record ArmPhaseTimer(PhaseTimedOut Timeout, TimeSpan After) : IRunOutput;

public sealed record CancelPhaseTimer : IRunOutput;

/// <summary>(Re)arm the restart-grace timer.</summary>
public sealed record ArmRestartGrace(RestartGraceExpired Expiry, TimeSpan After) : IRunOutput;

public sealed record CancelRestartGrace : IRunOutput;

/// <summary>Create the empty partial checkpoint folder before a trainer is asked to write into it.</summary>
public sealed record PrepareCheckpoint(CheckpointPaths Partial) : IRunOutput;

/// <summary>Write the coordinator's part, seal and publish the checkpoint, then answer <see cref="CheckpointWritten"/>.</summary>
public sealed record CompleteCheckpoint(CheckpointPaths Partial, CoordinatorCheckpoint State, NormalizerState Normalizer) : IRunOutput;

/// <summary>A background checkpoint: write the coordinator's part now (the state it describes moves on), seal later.</summary>
public sealed record WriteCheckpointPart(CheckpointPaths Partial, CoordinatorCheckpoint State, NormalizerState Normalizer) : IRunOutput;

/// <summary>A background checkpoint's files are all written: seal and publish it, then answer <see cref="CheckpointWritten"/>.</summary>
public sealed record SealCheckpoint(CheckpointPaths Partial) : IRunOutput;

// Records: what happened, for whoever keeps account of it (see RunRecorder).

public enum RunLogLevel { Debug, Info, Warning, Error }

/// <summary>A line for the operator's log.</summary>
public sealed record Logged(RunLogLevel Level, string Message) : IRunOutput;

/// <summary>Something the user should read (shown beside the progress bar).</summary>
public sealed record Noticed(string Message) : IRunOutput;

public sealed record PhaseChanged(RunPhase From, RunPhase To, long Step, long Generation) : IRunOutput;

/// <summary>The replicas hold the committed step and agree; the run clock starts at the first.</summary>
public sealed record ReplicasSynchronised(long Step) : IRunOutput;

public sealed record StepStarted(long Step, long Generation) : IRunOutput;

/// <summary>One timed part of the step (ColmInstruments' phase names), measured by the machine's clock.</summary>
public sealed record PhaseTimed(string Name, TimeSpan Elapsed) : IRunOutput;

public sealed record CoresetSelected(long Step, CoresetSelection Selection) : IRunOutput;

/// <summary>Every trainer finished <paramref name="Step"/>: the weighted loss, examples trained and each trainer's own timings.</summary>
public sealed record StepCompleted(
    long Step, double Loss, int Samples, TimeSpan StepTime, CoresetSelection Selection, long Generation,
    ImmutableArray<RankReport> Ranks, int Tokens, double GradNorm) : IRunOutput;

/// <summary>
/// One rank's own part of a step, beside the phase times the coordinator sees (which add messaging
/// and waiting): its sketch, forward/backward, time in the all-reduce (its wait for the slowest
/// peer plus the transfer: a straggler's peers wait, the straggler does not), optimizer, and its
/// process's peak memory.
/// </summary>
public sealed record RankReport(int Rank, double Sketch, double Compute, double AllReduce, double Optimizer, long PeakMemoryBytes);

public sealed record Evaluated(EvalReport Report) : IRunOutput;

public sealed record CheckpointTaken(long Step, CheckpointPaths Checkpoint) : IRunOutput;

public sealed record TrainerRestartRecorded(int Rank, long Step, string Reason) : IRunOutput;

/// <summary>
/// Every replica holds the committed <paramref name="Step"/> again after a restart, copied from
/// <paramref name="Source"/> ("replica" or "checkpoint"; <paramref name="From"/> says which),
/// <paramref name="Elapsed"/> after the first restart of the recovery.
/// </summary>
public sealed record RecoveryCompleted(long Step, long Generation, string Source, string From, TimeSpan Elapsed) : IRunOutput;

/// <summary>
/// The run's membership changed: trainers of <paramref name="Node"/> were lost (<paramref name="Change"/>
/// "lost", <paramref name="Ranks"/> the ranks they held) or admitted ("joined", the ranks dealt to them),
/// leaving <paramref name="Trainers"/> trainers from generation <paramref name="Generation"/> on;
/// <paramref name="Step"/> is the last committed step.
/// </summary>
public sealed record MembershipChanged(long Step, long Generation, string Change, string Node, ImmutableArray<int> Ranks, int Trainers, string Reason)
    : IRunOutput;

/// <summary>The run ended as completed or stopped; the adapter of <paramref name="FinalCheckpoint"/> is the result.</summary>
public sealed record RunCompleted(RunResult Result, CheckpointPaths FinalCheckpoint) : IRunOutput;

public sealed record RunFailed(RunResult Result) : IRunOutput;
