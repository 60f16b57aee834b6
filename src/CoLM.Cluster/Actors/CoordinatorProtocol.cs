using System.Collections.Immutable;
using Akka.Actor;
using CoLM.Cluster.Coordination;
using CoLM.Training;

namespace CoLM.Cluster.Actors;

// ---- Protocol: trainer -> coordinator (the cluster singleton). Replies carry the generation
// and step of the assignment they answer; the coordinator drops any that are stale. Every
// message that may cross nodes implements IClusterMessage and so goes through the binary
// ColmMessageSerializer (unregistered types are refused on the wire).

/// <summary>
/// A trainer announces itself once, when it first starts. <paramref name="Node"/> is its node's
/// cluster address and <paramref name="LocalIndex"/> its device on that node: ranks are dealt out
/// in (node, device) order once every trainer has arrived. <paramref name="DataEndpoint"/> is where
/// its data-plane peer connects ("" when every trainer shares this process). <paramref name="Incarnation"/>
/// is the node process's unique cluster id: a node restarted on the same address is another incarnation.
/// </summary>
public sealed record RegisterTrainer(IActorRef Trainer, string Node, int LocalIndex, string DataEndpoint, long Incarnation) : IClusterMessage;

/// <summary>A trainer was restarted by its supervisor; its replica is fresh and must be resynchronised.</summary>
public sealed record TrainerRestarted(IActorRef Trainer, string Node, int LocalIndex, string Reason) : IClusterMessage;

public sealed record Sketches(long Generation, long Step, int Rank, ImmutableArray<int> Ids,
    ImmutableArray<float> Losses, ImmutableArray<float> Coefficients, ImmutableArray<float> Features, TimeSpan Elapsed) : IClusterMessage, IRunEvent;

public sealed record StepDone(long Generation, long Step, int Rank, TrainOutcome Outcome) : IClusterMessage, IRunEvent;

/// <summary>
/// The assignment failed for a reason outside this replica. <paramref name="Fatal"/>: bad input
/// (data, checkpoint, storage; see BadInput) that ends the run at once. <paramref name="NotArrived"/>:
/// the ranks this one waited for in vain at a collective (a timeout names them), so the coordinator
/// can blame the rank that hung rather than the one that reported it.
/// </summary>
public sealed record StepFailed(long Generation, long Step, int Rank, string Reason, bool Fatal, ImmutableArray<int> NotArrived) : IClusterMessage, IRunEvent;

/// <summary>
/// Every colm.cluster.heartbeat-interval, from each trainer with a rank: what it is doing
/// (<paramref name="Work"/>: the request's kind, or "idle"; for <paramref name="BusySeconds"/>) at
/// <paramref name="Step"/>, and how far it is through the generation's collectives (entered,
/// completed, and how long it has waited in the current one). The coordinator names and evicts a
/// rank its peers wait for in vain (colm.cluster.hang-timeout).
/// </summary>
public sealed record TrainerHeartbeat(long Generation, int Rank, string Work, long Step, double BusySeconds,
    long CollectivesEntered, long CollectivesCompleted, double WaitingSeconds) : IClusterMessage, IRunEvent;

/// <summary>
/// Answer to <see cref="InspectReplica"/>: what this trainer's replica holds. A restarted trainer
/// has no replica (<paramref name="HasState"/> false) until the next Synchronise builds one.
/// </summary>
public sealed record ReplicaInspected(long Generation, int Rank, bool HasState, long CompletedSteps, ulong Checksum) : IClusterMessage, IRunEvent;

public sealed record EvalDone(long Generation, long Step, int Rank, ImmutableArray<int> Ids, EvalOutcome Outcome) : IClusterMessage, IRunEvent;

public sealed record Synchronised(long Generation, int Rank, long CompletedSteps, ulong Checksum, int SketchDimension) : IClusterMessage, IRunEvent;

public sealed record StateSaved(long Generation, long Step, int Rank) : IClusterMessage, IRunEvent;

/// <summary>A background checkpoint's replica state and adapter are copied in memory; the files follow (<see cref="StateSaved"/>).</summary>
public sealed record StateCopied(long Generation, long Step, int Rank) : IClusterMessage, IRunEvent;

// ---- From the process hosting (or the client that submitted) the run.

/// <summary>Finish at the next step boundary with a checkpoint (Ctrl-C, or a job's time limit).</summary>
public sealed record StopRequested(string Reason) : IClusterMessage, IRunEvent;
