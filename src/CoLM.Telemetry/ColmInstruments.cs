using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace CoLM.Telemetry;

/// <summary>
/// Owns every metric instrument of CoLM.Cluster. Callers say what happened through the intent
/// methods (<c>OnStepCompleted</c>, <c>OnPhase</c>, ...); names, units and tags are decided here
/// and nowhere else. One instance per process role, tagged with the run id on its meter.
/// Thread-safe: the intent methods may be called from any thread.
/// </summary>
public sealed class ColmInstruments : IDisposable
{
    // Phase tag values used by OnPhase, one per timed part of a step.
    public const string PhaseSketch = "sketch";
    public const string PhaseSelect = "select";
    public const string PhaseTrain = "train";
    public const string PhaseAllReduce = "allreduce";
    public const string PhaseEval = "eval";
    public const string PhaseCheckpoint = "checkpoint";

    // Bucket boundaries for durations in seconds (the SDK default assumes milliseconds).
    private static readonly IReadOnlyList<double> SecondsBuckets =
        [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

    // Bucket boundaries for cross-entropy in nats: from ln(vocab) ~ 11 at init down to ~1.
    private static readonly IReadOnlyList<double> NatsBuckets =
        [0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 5, 6, 8, 10, 12];

    private readonly Meter _meter;

    private readonly Histogram<double> _trainLoss;
    private readonly Histogram<double> _stepDuration;
    private readonly Histogram<double> _phaseDuration;
    private readonly Counter<long> _trainSamples;
    private readonly Counter<long> _selected;
    private readonly Counter<long> _degenerateFeatures;
    private readonly Counter<long> _smallCappedSteps;
    private readonly Counter<long> _trainerRestarts;
    private readonly Histogram<double> _recoveryDuration;
    private readonly Counter<long> _membershipChanges;
    private readonly Counter<long> _trainTokens;
    private long _trainers = -1;

    // Last values read by the observable gauges at each collection.
    private readonly ConcurrentDictionary<string, double> _evalAccuracy = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, double> _evalLoss = new(StringComparer.Ordinal);
    private long _lastStep = -1;
    private volatile Latest? _lastLoss; // the latest step's loss, null before the first (read by the gauge on another thread)
    private volatile StepLast? _stepLast;
    private long _checkpointAt; // Stopwatch timestamp of the latest sealed checkpoint, 0 before the first
    private long _checkpointBytes;
    private volatile IReadOnlyList<RankLast> _ranks = [];

    /// <summary>The latest step's learning rate, gradient norm and tokens per second, read by their gauges.</summary>
    private sealed record StepLast(double LearningRate, double GradNorm, double TokensPerSecond);

    private sealed record Latest(double Value);

    /// <summary>One rank's own times in the latest step and its process's peak memory (tag rank on each gauge).</summary>
    public sealed record RankLast(int Rank, double Sketch, double Compute, double AllReduce, double Optimizer, long PeakMemoryBytes);

    public ColmInstruments(string runId)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(runId);
        RunId = runId;
        _meter = new Meter(ColmTelemetry.MeterName);

        _trainLoss = _meter.CreateHistogram("colm.train.loss", "{nats}",
            "Mean training loss of a completed step.", tags: null,
            new InstrumentAdvice<double> { HistogramBucketBoundaries = NatsBuckets });
        _stepDuration = _meter.CreateHistogram("colm.step.duration", "s",
            "Wall time of a completed step.", tags: null,
            new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });
        _phaseDuration = _meter.CreateHistogram("colm.phase.duration", "s",
            "Wall time of one phase of a step (tag phase).", tags: null,
            new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });
        _trainSamples = _meter.CreateCounter<long>("colm.train.samples", "{examples}",
            "Examples the model was trained on.");
        _selected = _meter.CreateCounter<long>("colm.selection.selected", "{examples}",
            "Examples chosen by selection (tag source).");
        _degenerateFeatures = _meter.CreateCounter<long>("colm.selection.degenerate_features", "{features}",
            "Sketch features skipped by selection because they were degenerate (zero or constant).");
        _smallCappedSteps = _meter.CreateCounter<long>("colm.selection.small_capped_steps", "{steps}",
            "Steps whose small-source pool examples did not fit in b - R, so only a sample of them was kept.");
        _trainerRestarts = _meter.CreateCounter<long>("colm.trainer.restarts", "{restarts}",
            "Trainer restarts by the supervisor (tag rank).");
        _recoveryDuration = _meter.CreateHistogram("colm.recovery.duration", "s",
            "From a trainer restart or a lost node to every replica holding the committed step again (tag source: replica or checkpoint).", tags: null,
            new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });

        _trainTokens = _meter.CreateCounter<long>("colm.train.tokens", "{tokens}", "Target tokens the model was trained on.");
        _meter.CreateObservableGauge("colm.checkpoint.age", ReadCheckpointAge, "s", "Seconds since the latest checkpoint was sealed.");
        _meter.CreateObservableGauge("colm.checkpoint.size", ReadCheckpointBytes, "By", "Size of the latest checkpoint.");
        _meter.CreateObservableGauge("colm.train.lr", () => Last(l => l.LearningRate), "1", "Learning rate of the latest step.");
        _meter.CreateObservableGauge("colm.train.grad_norm", () => Last(l => l.GradNorm), "1",
            "Global gradient L2 norm of the latest step, before clipping.");
        _meter.CreateObservableGauge("colm.train.tokens_per_second", () => Last(l => l.TokensPerSecond), "{tokens}/s",
            "Target tokens per second of wall time in the latest step.");
        _meter.CreateObservableGauge("colm.rank.sketch", () => PerRank(r => r.Sketch), "s", "A rank's own sketch time in the latest step (tag rank).");
        _meter.CreateObservableGauge("colm.rank.compute", () => PerRank(r => r.Compute), "s",
            "A rank's own forward and backward time in the latest step (tag rank).");
        _meter.CreateObservableGauge("colm.rank.allreduce", () => PerRank(r => r.AllReduce), "s",
            "A rank's time in the all-reduce in the latest step: waiting for the slowest peer plus the transfer (tag rank).");
        _meter.CreateObservableGauge("colm.rank.memory.peak", () => PerRank(r => r.PeakMemoryBytes), "By",
            "Peak resident memory of a rank's process (tag rank).");

        _membershipChanges = _meter.CreateCounter<long>("colm.membership.changes", "{changes}",
            "Trainer nodes lost or admitted during the run (tag change: lost or joined).");
        _meter.CreateObservableGauge<long>("colm.run.trainers", ReadTrainers, "{trainers}",
            "Trainers in the run: the ranks of the latest step, or after a later membership change.");
        _meter.CreateObservableGauge("colm.eval.accuracy", () => ReadLast(_evalAccuracy), "1",
            "Accuracy of the latest evaluation (tag source).");
        _meter.CreateObservableGauge("colm.eval.loss", () => ReadLast(_evalLoss), "{nats}",
            "Loss of the latest evaluation (tag source).");
        _meter.CreateObservableGauge<long>("colm.train.step", ReadLastStep, "{steps}",
            "Index of the latest completed step.");
        _meter.CreateObservableGauge("colm.memory.peak", () => new Measurement<long>(PeakMemory.PeakBytes(), Run), "By",
            "Peak resident memory of this process (VmHWM).");
        _meter.CreateObservableGauge("colm.train.loss.latest", ReadLastLoss, "{nats}",
            "Loss of the latest step (the histogram colm.train.loss has every step's; its sum / count is the mean since the start).");
    }

    public string RunId { get; }

    // Every measurement carries the run's id as the label "run" (a meter-level tag would reach Prometheus as otel_scope_run).
    private KeyValuePair<string, object?> Run => new("run", RunId);

    /// <summary>A step finished: its mean loss, wall time and the number of examples trained on.</summary>
    public void OnStepCompleted(long step, double loss, TimeSpan duration, int samples)
    {
        _trainLoss.Record(loss, Run);
        _stepDuration.Record(duration.TotalSeconds, Run);
        _trainSamples.Add(samples, Run);
        Interlocked.Exchange(ref _lastStep, step);
        _lastLoss = new Latest(loss);
    }

    /// <summary>A checkpoint of <paramref name="bytes"/> was sealed now.</summary>
    public void OnCheckpoint(long bytes)
    {
        Interlocked.Exchange(ref _checkpointBytes, bytes);
        Interlocked.Exchange(ref _checkpointAt, System.Diagnostics.Stopwatch.GetTimestamp());
    }

    private IEnumerable<Measurement<double>> ReadCheckpointAge()
    {
        long at = Interlocked.Read(ref _checkpointAt);
        if (at != 0) yield return new Measurement<double>(System.Diagnostics.Stopwatch.GetElapsedTime(at).TotalSeconds, Run);
    }

    private IEnumerable<Measurement<long>> ReadCheckpointBytes()
    {
        if (Interlocked.Read(ref _checkpointAt) != 0) yield return new Measurement<long>(Interlocked.Read(ref _checkpointBytes), Run);
    }

    /// <summary>The latest step's learning rate, tokens, gradient norm and each rank's own part.</summary>
    public void OnStepDetails(double learningRate, int tokens, double tokensPerSecond, double gradNorm, IReadOnlyList<RankLast> ranks)
    {
        _trainTokens.Add(tokens, Run);
        _stepLast = new StepLast(learningRate, gradNorm, tokensPerSecond);
        _ranks = ranks;
        if (ranks.Count > 0) Interlocked.Exchange(ref _trainers, ranks.Count);
    }

    private IEnumerable<Measurement<double>> Last(Func<StepLast, double> value)
    {
        if (_stepLast is { } last) yield return new Measurement<double>(value(last), Run);
    }

    private IEnumerable<Measurement<T>> PerRank<T>(Func<RankLast, T> value) where T : struct =>
        _ranks.Select(r => new Measurement<T>(value(r), Run, new KeyValuePair<string, object?>("rank", r.Rank)));

    /// <summary>One phase of a step finished; <paramref name="phase"/> is one of the Phase* constants.</summary>
    public void OnPhase(string phase, TimeSpan duration) =>
        _phaseDuration.Record(duration.TotalSeconds, Run, new KeyValuePair<string, object?>("phase", phase));

    /// <summary>Selection chose <paramref name="count"/> examples from <paramref name="source"/>.</summary>
    public void OnSelected(string source, int count) =>
        _selected.Add(count, Run, new KeyValuePair<string, object?>("source", source));

    /// <summary>Selection skipped <paramref name="count"/> degenerate sketch features.</summary>
    public void OnDegenerateFeatures(int count) => _degenerateFeatures.Add(count, Run);

    /// <summary>Selection left <paramref name="count"/> small-source examples out to keep the large sources' reserve.</summary>
    public void OnSmallSourcesCapped(int count)
    {
        if (count > 0) _smallCappedSteps.Add(1, Run);
    }

    /// <summary>An evaluation of <paramref name="source"/> finished; the gauges report these until the next one.</summary>
    public void OnEvaluated(string source, double accuracy, double loss)
    {
        _evalAccuracy[source] = accuracy;
        _evalLoss[source] = loss;
    }

    /// <summary>The supervisor restarted the trainer of <paramref name="rank"/>.</summary>
    public void OnTrainerRestarted(int rank) =>
        _trainerRestarts.Add(1, Run, new KeyValuePair<string, object?>("rank", rank));

    /// <summary>The replicas hold the committed step again after a restart; <paramref name="source"/> is "replica" or "checkpoint".</summary>
    public void OnRecovered(TimeSpan duration, string source) =>
        _recoveryDuration.Record(duration.TotalSeconds, Run, new KeyValuePair<string, object?>("source", source));

    /// <summary>Trainers were lost or admitted (<paramref name="change"/>); <paramref name="trainers"/> remain in the run.</summary>
    public void OnMembershipChanged(string change, int trainers)
    {
        _membershipChanges.Add(1, Run, new KeyValuePair<string, object?>("change", change));
        Interlocked.Exchange(ref _trainers, trainers);
    }

    public void Dispose() => _meter.Dispose();

    private IEnumerable<Measurement<long>> ReadTrainers()
    {
        long trainers = Interlocked.Read(ref _trainers);
        if (trainers >= 0) yield return new Measurement<long>(trainers, Run);
    }

    private IEnumerable<Measurement<double>> ReadLast(ConcurrentDictionary<string, double> lastBySource)
    {
        foreach (var (source, value) in lastBySource)
            yield return new Measurement<double>(value, Run, new KeyValuePair<string, object?>("source", source));
    }

    private IEnumerable<Measurement<double>> ReadLastLoss()
    {
        if (_lastLoss is { } last) yield return new Measurement<double>(last.Value, Run);
    }

    private IEnumerable<Measurement<long>> ReadLastStep()
    {
        long step = Interlocked.Read(ref _lastStep);
        if (step >= 0)
            yield return new Measurement<long>(step, Run);
    }
}
