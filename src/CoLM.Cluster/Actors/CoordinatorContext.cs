using CoLM.Cluster.Runs;
using CoLM.Data;
using CoLM.Telemetry;
using CoLM.Training.Settings;

namespace CoLM.Cluster.Actors;

/// <summary>Everything the coordinator needs, built once by the process that hosts the run.</summary>
public sealed record CoordinatorContext(
    ColmSettings Settings,
    string ResolvedConfig,
    DataMixture Data,
    RunDirectory Run,
    ColmInstruments Instruments,
    IRunObserver Observer,
    TaskCompletionSource<RunResult> Completion,
    CheckpointPaths? ResumeFrom);
