using CoLM.Cluster.Runs;
using CoLM.Data;
using CoLM.Telemetry;
using CoLM.Training.Settings;

namespace CoLM.Cluster.Actors;

/// <summary>
/// Everything the coordinator needs, built once by the process that hosts the run (on every
/// coordinator-role node: the one that takes over uses its own). <paramref name="RunId"/> names the
/// submission whose journal a successor reads; "" keeps no journal.
/// </summary>
public sealed record CoordinatorContext(
    ColmSettings Settings,
    string ResolvedConfig,
    DataMixture Data,
    RunDirectory Run,
    ColmInstruments Instruments,
    IRunObserver Observer,
    TaskCompletionSource<RunResult> Completion,
    CheckpointPaths? ResumeFrom,
    string RunId = "");
