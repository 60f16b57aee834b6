namespace CoLM.Cluster.Runs;

/// <summary>One finished optimizer step, as the coordinator saw it.</summary>
public sealed record StepReport(
    long Step, long TotalSteps, double Loss, double LearningRate, int Samples, double SamplesPerSecond,
    TimeSpan StepTime, TimeSpan Elapsed, IReadOnlyDictionary<string, double> PhaseSeconds,
    IReadOnlyDictionary<string, int> SelectedPerSource);

/// <summary>One held-out evaluation: per-source exact match and loss.</summary>
public sealed record EvalReport(long Step, IReadOnlyDictionary<string, SourceScore> Sources, double MeanAccuracy, double MeanLoss);

/// <summary>How a run ended. <paramref name="BadInput"/>: it failed on the user's data, settings, checkpoint or storage (exit 2).</summary>
public sealed record RunResult(string State, long Step, string RunDirectory, EvalReport? Before, EvalReport? After, string? Error, bool BadInput = false);

/// <summary>Receives progress from the coordinator (the CLI draws a progress bar from it).</summary>
public interface IRunObserver
{
    void OnStep(StepReport report);
    void OnEvaluation(EvalReport report);
    void OnNotice(string message);
}

public sealed class SilentObserver : IRunObserver
{
    public static SilentObserver Instance { get; } = new();
    public void OnStep(StepReport report) { }
    public void OnEvaluation(EvalReport report) { }
    public void OnNotice(string message) { }
}
