using System.Diagnostics;

namespace CoLM.Telemetry;

/// <summary>
/// Process-wide telemetry names: the one meter name, the one <see cref="ActivitySource"/>, and the
/// constant span names. Metric instruments live in <see cref="ColmInstruments"/>.
/// </summary>
public static class ColmTelemetry
{
    public const string MeterName = "CoLM.Cluster";
    public const string ActivitySourceName = "CoLM.Cluster";

    /// <summary>The one activity source for the process; spans are started only through it.</summary>
    public static readonly ActivitySource Source = new(ActivitySourceName);

    // Span names are constants so traces group by kind of work; details go in tags.
    public const string StepSpan = "colm.step";             // one optimisation step (parent of the phases below)
    public const string SketchSpan = "colm.sketch";         // per-example gradient sketches
    public const string SelectSpan = "colm.select";         // choosing the training subset
    public const string TrainSpan = "colm.train";           // forward/backward/all-reduce/update on the subset
    public const string EvalSpan = "colm.eval";             // evaluation pass
    public const string CheckpointSpan = "colm.checkpoint"; // writing a checkpoint
    public const string ResyncSpan = "colm.resync";         // bringing a restarted trainer back in step
}
