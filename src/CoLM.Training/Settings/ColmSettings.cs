using CoLM.Data;
using CoLM.Determinism;
using CoLM.Model;
using CoLM.Selection;

namespace CoLM.Training.Settings;

/// <summary>Everything a run reads, parsed once from HOCON (hocon/colm.conf documents each key).</summary>
public sealed record ColmSettings(
    RunSettings Run,
    ModelSettings Model,
    DataSettings Data,
    SelectionSettings Selection,
    TrainSettings Train,
    ClusterSettings Cluster,
    TelemetrySettings Telemetry)
{
    /// <summary>colm.pretrain: only `colm pretrain` reads it.</summary>
    public PretrainSettings Pretrain { get; init; } = new(2000, 32, 0.002, 11);
}

/// <summary>`colm pretrain`: full-parameter next-token training of the built-in decoder on <see cref="Data.PretrainCorpus"/>.</summary>
public sealed record PretrainSettings(int Steps, int BatchSize, double LearningRate, long CorpusSeed);

public sealed record RunSettings(string Root, string Name, long Seed);

public sealed record ModelSettings(
    string Path, string Adapter, string Tokenizer, int Dim, int Layers, int Heads, int HiddenDim, int MaxSeqLen, double RopeTheta,
    long InitSeed, LoraSettings Lora)
{
    /// <summary>colm.model.base: "pretrained" (the shipped base, <see cref="PretrainedBase"/>) or "random"; ignored when Path is set.</summary>
    public string Base { get; init; } = PretrainedBase.Random;

    /// <summary>The model folder a run loads: Path when set, else the shipped pretrained base when Base asks for it, else "" (the built-in decoder from its seed).</summary>
    public string Folder => Path.Length > 0 ? Path : Base == PretrainedBase.Pretrained ? PretrainedBase.ShippedFolder : "";

    public bool IsHuggingFace => Folder.Length > 0;

    /// <summary>
    /// The model folder's tokenizer is used when asked for, or by default with a model folder,
    /// except a folder `colm pretrain` wrote: it has none and reads characters.
    /// </summary>
    public bool UsesModelTokenizer => Tokenizer == "model" || (Tokenizer == "auto" && IsHuggingFace && !PretrainedBase.UsesCharTokenizer(Folder));

    /// <summary>colm.model.dtype: float32 | bfloat16 | float16 | auto (the model folder's torch_dtype).</summary>
    public string Dtype { get; init; } = "float32";

    public DecoderConfig ToDecoderConfig(int vocabSize) =>
        new(vocabSize, Dim, Layers, Heads, HiddenDim, MaxSeqLen, RopeTheta);

    /// <summary>
    /// The compute dtype for the frozen base weights: <see cref="Dtype"/>, or for "auto" the folder's
    /// <paramref name="storedDtype"/> (config.json torch_dtype) when it is bfloat16 or float16, else float32.
    /// </summary>
    public string ResolveDtype(string? storedDtype) =>
        Dtype != "auto" ? Dtype : storedDtype is "bfloat16" or "float16" ? storedDtype : "float32";
}

public sealed record DataSettings(
    string Kind, string Path, JsonlFields Fields, int MaxLength, int HeldoutPerSource,
    SyntheticMixtureSettings Synthetic, string PromptTemplate)
{
    /// <summary>Alpaca for JSONL (the reference's default), nothing for the built-in mixture, unless set.</summary>
    public bool UsesAlpaca => PromptTemplate == "alpaca" || (PromptTemplate == "auto" && Kind == "jsonl");

    /// <summary>colm.data.format: math | classification | auto (from the first row's fields).</summary>
    public string Format { get; init; } = "auto";

    /// <summary>colm.data.labels: the label words of classification data (an integer label indexes them).</summary>
    public IReadOnlyList<string> Labels { get; init; } = [];
}

/// <summary>How the gradient feature of colm / grad-norm is obtained (COLM.md "Alternatives").</summary>
public enum FeatureMode { Zo, Exact, Paper }

public sealed record SelectionSettings(
    SelectionMethod Method, int Pool, int Budget, int Probes, double Epsilon,
    double SparsifyFraction, int SparsifyCount, IReadOnlyList<string>? SmallSources,
    FeatureMode Feature, CoresetWeighting Weighting, bool SourceBalancing, double LargeReserve)
{
    public SelectionOptions ToOptions() =>
        new(Method, SparsifyFraction, SparsifyCount) { Weighting = Weighting, SourceBalancing = SourceBalancing, LargeReserve = LargeReserve };

    /// <summary>Examples trained on per step: b, or all of L for big-batch.</summary>
    public int TrainedPerStep => Method == SelectionMethod.BigBatch ? Pool : Budget;

    /// <summary>K actually used: paper mode is a single probe.</summary>
    public int EffectiveProbes => Feature == FeatureMode.Paper ? 1 : Probes;

    /// <summary>A fresh probe seed per step, except in paper mode, which keeps one for the whole run.</summary>
    public long ProbeSeed(long runSeed, long step) => RandomStreams.ProbeSeed(runSeed, Feature == FeatureMode.Paper ? 0 : step);

    /// <summary>What trainers must compute about the pool for this method; null = nothing (no sketch phase).</summary>
    public SketchKind? SketchKind =>
        SelectionMethods.NeedsFeatures(Method) ? (Feature == FeatureMode.Exact ? Training.SketchKind.Exact : Training.SketchKind.ZerothOrder)
        : SelectionMethods.NeedsLosses(Method) ? Training.SketchKind.LossOnly
        : null;

    /// <summary>Whether small-source pool examples are sketched too (they are not when kept whole).</summary>
    public bool SketchesSmallSources => SelectionMethods.SketchesSmallSources(Method, SourceBalancing);
}

/// <summary>Deliberate faults for recovery tests (colm.train.fault-injection); 0 steps = off.</summary>
public sealed record FaultInjectionSettings(int CrashAtStep, int CrashRank, int DivergeAtStep, int DivergeRank,
    int HangAtStep = 0, int HangRank = 0, TimeSpan HangFor = default);

public sealed record TrainSettings(
    int Steps, double LearningRate, double WeightDecay, double WarmupFraction, double GradClip,
    int EvalEvery, int CheckpointEvery, int KeepCheckpoints, int ChecksumEvery, int StopAtStep,
    int Trainers, int ThreadsPerTrainer, FaultInjectionSettings Faults)
{
    /// <summary>
    /// colm.train.max-failures: how many times a run that failed (not on bad input) restarts
    /// itself from its newest checkpoint before it gives up; 0 = never (the default).
    /// </summary>
    public int MaxFailures { get; init; }

    /// <summary>
    /// colm.train.min-trainers: the fewest trainers a cluster run goes on with after losing nodes
    /// (below it the run waits colm.cluster.membership-wait for nodes to join, then stops with a
    /// checkpoint). 1 by default: a run goes on while any trainer is left.
    /// </summary>
    public int MinTrainers { get; init; } = 1;

    /// <summary>colm.train.max-trainers: the most trainers a run admits when nodes join mid-run; 0 = the trainers it started with.</summary>
    public int MaxTrainers { get; init; }

    /// <summary>The most trainers this run admits.</summary>
    public int MaxTrainersAdmitted => MaxTrainers > 0 ? MaxTrainers : Trainers;

    /// <summary>Linear warmup then linear decay to zero; a pure function of the step so a resumed run needs no scheduler state beyond the step.</summary>
    public double LearningRateAt(long step)
    {
        long warmup = (long)Math.Ceiling(WarmupFraction * Steps);
        if (warmup > 0 && step < warmup) return LearningRate * (step + 1) / warmup;
        double remaining = Math.Max(0, Steps - step);
        double span = Math.Max(1, Steps - warmup);
        return LearningRate * remaining / span;
    }

    /// <summary>libtorch threads per trainer: the configured count, or the cores shared out among the trainers on them.</summary>
    public int ThreadsFor(int cores, int trainersOnTheseCores) =>
        ThreadsPerTrainer > 0 ? ThreadsPerTrainer : Math.Max(1, cores / Math.Max(1, trainersOnTheseCores));

    /// <summary>As above when every trainer of the run shares these cores (one process).</summary>
    public int ThreadsFor(int cores) => ThreadsFor(cores, Trainers);
}

public sealed record ClusterSettings(
    string Hostname, string PublicHostname, int Port, IReadOnlyList<string> SeedNodes, IReadOnlyList<string> Roles, DeviceSpec Devices,
    TimeSpan JoinTimeout, TimeSpan PhaseTimeout, TimeSpan CollectiveTimeout)
{
    public const string CoordinatorRole = "coordinator", TrainerRole = "trainer";

    /// <summary>colm.cluster.restart-grace: after a rank reports its step aborted, how long the coordinator waits for the failed peer's restart.</summary>
    public TimeSpan RestartGrace { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>colm.cluster.membership-wait: how long a run below colm.train.min-trainers waits for nodes to join before it stops.</summary>
    public TimeSpan MembershipWait { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>colm.cluster.heartbeat-interval: how often each trainer reports its work and collective progress to the coordinator.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// colm.cluster.hang-timeout: a rank whose peers have waited this long in a collective it has
    /// not entered is silent (alive but hung) and is evicted like a lost one (cluster runs).
    /// </summary>
    public TimeSpan HangTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The address peers use to reach this node.</summary>
    public string AdvertisedHostname => PublicHostname.Length > 0 ? PublicHostname : Hostname;

    public bool HasRole(string role) => Roles.Contains(role);
}

/// <summary>
/// colm.telemetry: Exporter is "none" or a comma-separated list of console, file, prometheus, otlp
/// (OtlpEndpoint: where otlp sends; empty for OpenTelemetry's default or OTEL_EXPORTER_OTLP_ENDPOINT);
/// Http turns on the process's HTTP host (metrics, health, dashboard) at HttpHost:HttpPort.
/// </summary>
public sealed record TelemetrySettings(
    string Exporter, string File, TimeSpan MetricInterval, bool Http = true, string HttpHost = "127.0.0.1", int HttpPort = 9464,
    string OtlpEndpoint = "");
