using System.Collections.Immutable;
using Akka.Actor;
using CoLM.Cluster.Runs;

namespace CoLM.Cluster.Actors;

// ---- Protocol: a client (`colm train --cluster`, `colm launch`) <-> the NodeAgent of every node
// (/user/colm-node). A run is submitted to every member; each starts what its roles ask for.

/// <summary>Client -> agent: what does this node offer? Answered with <see cref="NodeDescription"/>.</summary>
public sealed record DescribeNode : IClusterMessage
{
    public static DescribeNode Instance { get; } = new();
}

/// <summary>Agent -> client: the node's address, roles and how many trainers (devices) it hosts.</summary>
public sealed record NodeDescription(string Node, ImmutableArray<string> Roles, int Trainers, string Devices, string? ActiveRun) : IClusterMessage;

/// <summary>
/// Client -> agent: start run <paramref name="RunId"/>. <paramref name="Config"/> is the fully
/// resolved HOCON (colm.train.trainers already equals the cluster's trainer count);
/// <paramref name="RunDirectory"/> is on storage every node shares; <paramref name="ResumeCheckpoint"/>
/// is a checkpoint directory when resuming.
/// </summary>
public sealed record SubmitRun(string RunId, string Config, string RunDirectory, string? ResumeCheckpoint, IActorRef Client) : IClusterMessage;

/// <summary>Agent -> client: this node started its part of the run.</summary>
public sealed record RunAccepted(string RunId, string Node, int Trainers) : IClusterMessage;

/// <summary>Agent -> client: this node cannot take part (bad config or data on this node, another run active).</summary>
public sealed record RunRefused(string RunId, string Node, string Reason) : IClusterMessage;

/// <summary>Client -> agent: the run is over (or abandoned); stop its trainers and coordinator on this node.</summary>
public sealed record EndRun(string RunId) : IClusterMessage;

/// <summary>Client -> agent: leave the cluster and exit the process (`colm launch` stopping its nodes).</summary>
public sealed record ShutdownNode(string Reason) : IClusterMessage;

// ---- Protocol: the coordinator of a submitted run -> the client that submitted it.

public sealed record RunStepReported(string RunId, StepReport Report) : IClusterMessage;

public sealed record RunEvaluated(string RunId, EvalReport Report) : IClusterMessage;

public sealed record RunNotice(string RunId, string Message) : IClusterMessage;

public sealed record RunEnded(string RunId, RunResult Result) : IClusterMessage;
