using System.Diagnostics;
using CoLM.Cluster.Actors;
using CoLM.Cluster.Runs;
using CoLM.Telemetry;

namespace CoLM.Cluster.Coordination;

/// <summary>
/// Keeps account of a run from the state machine's records: metrics.jsonl rows, status.json, the
/// final report and adapter, OpenTelemetry spans and instruments, and the progress observer. It
/// decides nothing; the machine never writes. Owns the run clock (wall time since the replicas
/// first synchronised in this process).
/// </summary>
public sealed class RunRecorder(CoordinatorContext ctx, bool takingOver = false) : IDisposable
{
    // A coordinator that takes over may see a step again that its predecessor recorded just before
    // its node was lost (the journal is written before sends, the row before the journal): one row per step.
    private readonly long _recordedThrough = takingOver ? ctx.Run.LastRecordedStep() : 0;
    private readonly Stopwatch _runClock = new();
    private readonly long _runClockOffsetSteps = ctx.ResumeFrom?.Step ?? 0;
    private readonly Dictionary<string, double> _phaseSeconds = [];
    private double _checkpointPause; // the training pause of the latest checkpoint (the copy, for a background one)
    private readonly TensorBoardScalars? _tensorboard = TelemetryOptions.ParseExporters(ctx.Settings.Telemetry.Exporter).Contains(TensorBoardScalars.Exporter)
        ? new TensorBoardScalars(ctx.Run)
        : null;
    private Activity? _stepSpan;
    private Activity? _phaseSpan;

    public void Record(IRunOutput record)
    {
        switch (record)
        {
            case PhaseChanged m: OnPhaseChanged(m); break;
            case ReplicasSynchronised: if (!_runClock.IsRunning) _runClock.Start(); break;
            case StepStarted m: OnStepStarted(m); break;
            case PhaseTimed m: OnPhaseTimed(m); break;
            case CoresetSelected m: OnSelected(m); break;
            case StepCompleted m: OnStepCompleted(m); break;
            case Evaluated m: OnEvaluated(m); break;
            case CheckpointTaken m: OnCheckpointTaken(m); break;
            case TrainerRestartRecorded m: OnTrainerRestarted(m); break;
            case RecoveryCompleted m: OnRecovered(m); break;
            case MembershipChanged m: OnMembershipChanged(m); break;
            case Noticed m: ctx.Observer.OnNotice(m.Message); break;
            case RunCompleted m: OnCompleted(m); break;
            case RunFailed m: OnFailed(m); break;
        }
    }

    private void OnPhaseChanged(PhaseChanged m)
    {
        _phaseSpan?.Dispose();
        _phaseSpan = m.To switch
        {
            RunPhase.Sketching => StartChildSpan(ColmTelemetry.SketchSpan),
            RunPhase.Training => StartChildSpan(ColmTelemetry.TrainSpan),
            RunPhase.Evaluating => StartChildSpan(ColmTelemetry.EvalSpan),
            RunPhase.Checkpointing => StartChildSpan(ColmTelemetry.CheckpointSpan),
            RunPhase.Synchronising or RunPhase.Inspecting => StartChildSpan(ColmTelemetry.ResyncSpan),
            _ => null,
        };
    }

    private void OnStepStarted(StepStarted m)
    {
        _stepSpan?.Dispose();
        _stepSpan = ColmTelemetry.Source.StartActivity(ColmTelemetry.StepSpan, ActivityKind.Internal, parentContext: default);
        _stepSpan?.SetTag("colm.step", m.Step);
        _stepSpan?.SetTag("colm.generation", m.Generation);
        _phaseSeconds.Clear();
    }

    private void OnPhaseTimed(PhaseTimed m)
    {
        _phaseSeconds[m.Name] = m.Elapsed.TotalSeconds;
        if (m.Name == ColmInstruments.PhaseCheckpoint) _checkpointPause = m.Elapsed.TotalSeconds;
        ctx.Instruments.OnPhase(m.Name, m.Elapsed);
        if (m.Name == ColmInstruments.PhaseSelect)
        {
            // Selection runs inside one event; its span is drawn afterwards with the measured times.
            var now = DateTimeOffset.UtcNow;
            using var span = ColmTelemetry.Source.StartActivity(ColmTelemetry.SelectSpan, ActivityKind.Internal,
                _stepSpan?.Context ?? default, startTime: now - m.Elapsed);
            span?.SetEndTime(now.UtcDateTime);
        }
    }

    private void OnSelected(CoresetSelected m)
    {
        if (m.Selection.DegenerateFeatures > 0) ctx.Instruments.OnDegenerateFeatures(m.Selection.DegenerateFeatures);
        ctx.Instruments.OnSmallSourcesCapped(m.Selection.SmallLeftOut);
    }

    private void OnStepCompleted(StepCompleted m)
    {
        var s = ctx.Settings;
        ctx.Instruments.OnStepCompleted(m.Step, m.Loss, m.StepTime, m.Samples);
        var perSource = new Dictionary<string, int>();
        for (int src = 0; src < m.Selection.SelectedPerSource.Length; src++)
        {
            if (m.Selection.SelectedPerSource[src] == 0) continue;
            perSource[ctx.Data.SourceNames[src]] = m.Selection.SelectedPerSource[src];
            ctx.Instruments.OnSelected(ctx.Data.SourceNames[src], m.Selection.SelectedPerSource[src]);
        }
        _stepSpan?.SetTag("colm.loss", m.Loss);
        _stepSpan?.Dispose();
        _stepSpan = null;

        if (m.Step <= _recordedThrough) return;
        double elapsed = _runClock.Elapsed.TotalSeconds;
        double perSecond = elapsed > 0 ? (m.Step - _runClockOffsetSteps) * s.Selection.TrainedPerStep / elapsed : 0;
        var report = new StepReport(m.Step, s.Train.Steps, m.Loss, s.Train.LearningRateAt(m.Step - 1), m.Samples, perSecond, m.StepTime,
            _runClock.Elapsed, new Dictionary<string, double>(_phaseSeconds), perSource);
        var slowest = new TrainerSeconds(m.Ranks.Select(r => r.Sketch).DefaultIfEmpty().Max(), m.Ranks.Select(r => r.Compute).DefaultIfEmpty().Max(),
            m.Ranks.Select(r => r.Optimizer).DefaultIfEmpty().Max());
        double tokensPerSecond = m.StepTime.TotalSeconds > 0 ? m.Tokens / m.StepTime.TotalSeconds : 0;
        ctx.Instruments.OnStepDetails(report.LearningRate, m.Tokens, tokensPerSecond, m.GradNorm,
            [.. m.Ranks.Select(r => new ColmInstruments.RankLast(r.Rank, r.Sketch, r.Compute, r.AllReduce, r.Optimizer, r.PeakMemoryBytes))]);
        var row = new StepRow(m.Step, m.Loss, report.LearningRate, m.Samples, perSecond, elapsed, m.StepTime.TotalSeconds,
            report.PhaseSeconds, perSource, m.Selection.DegenerateFeatures, m.Selection.SmallLeftOut, m.Generation,
            slowest, StepPlanner.Digest(m.Selection), m.Tokens, tokensPerSecond, m.GradNorm, m.Ranks);
        ctx.Run.AppendMetrics(row);
        _tensorboard?.Step(row);
        ctx.Observer.OnStep(report);
    }

    private void OnEvaluated(Evaluated m)
    {
        foreach (var (source, score) in m.Report.Sources) ctx.Instruments.OnEvaluated(source, score.Accuracy, score.Loss);
        var row = new EvalRow(m.Report.Step, _runClock.Elapsed.TotalSeconds, m.Report.MeanAccuracy, m.Report.MeanLoss, m.Report.Sources);
        ctx.Run.AppendMetrics(row);
        _tensorboard?.Eval(row);
        ctx.Observer.OnEvaluation(m.Report);
    }

    private void OnCheckpointTaken(CheckpointTaken m)
    {
        long bytes = Directory.Exists(m.Checkpoint.Directory)
            ? new DirectoryInfo(m.Checkpoint.Directory).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length)
            : 0;
        var row = new CheckpointRow(m.Step, Path.GetRelativePath(ctx.Run.Path, m.Checkpoint.Directory), bytes, _checkpointPause,
            _runClock.Elapsed.TotalSeconds);
        ctx.Run.AppendMetrics(row);
        _tensorboard?.Checkpoint(row);
        ctx.Instruments.OnCheckpoint(bytes);
        ctx.Run.WriteStatus("running", null, m.Step);
    }

    private void OnTrainerRestarted(TrainerRestartRecorded m)
    {
        ctx.Instruments.OnTrainerRestarted(m.Rank);
        ctx.Run.AppendMetrics(new RestartRow(m.Rank, m.Step, m.Reason));
        _stepSpan?.Dispose();
        _stepSpan = null;
    }

    private void OnRecovered(RecoveryCompleted m)
    {
        ctx.Instruments.OnRecovered(m.Elapsed, m.Source);
        ctx.Run.AppendMetrics(new RecoveryRow(m.Step, m.Generation, m.Source, m.From, m.Elapsed.TotalSeconds));
        ctx.Observer.OnNotice($"recovered in {m.Elapsed.TotalSeconds:0.0} s: every replica holds step {m.Step} again (from {m.From})");
    }

    private void OnMembershipChanged(MembershipChanged m)
    {
        ctx.Instruments.OnMembershipChanged(m.Change, m.Trainers);
        ctx.Run.AppendMetrics(new MembershipRow(m.Step, m.Generation, m.Change, m.Node, m.Ranks, m.Trainers, m.Reason));
        _stepSpan?.Dispose();
        _stepSpan = null;
    }

    private void OnCompleted(RunCompleted m)
    {
        var r = m.Result;
        ctx.Run.PublishAdapter(m.FinalCheckpoint.Adapter);
        IReadOnlyList<string> pictures = [];
        try
        {
            pictures = RunPictures.Write(ctx.Run, r.Before, r.After);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or ArgumentException)
        {
            // The run itself is complete; a picture that cannot be drawn is said, not fatal.
            ctx.Observer.OnNotice($"the report's pictures could not be drawn: {e.Message}");
        }
        ctx.Run.WriteReport(RunReport.Markdown(ctx, r.Before, r.After, r.Step, r.State, pictures));
        ctx.Run.WriteStatus(r.State, null, r.Step);
        ctx.Completion.TrySetResult(r);
    }

    private void OnFailed(RunFailed m)
    {
        _stepSpan?.SetStatus(ActivityStatusCode.Error, m.Result.Error);
        _stepSpan?.Dispose();
        _stepSpan = null;
        try
        {
            ctx.Run.WriteStatus("failed", m.Result.Error, m.Result.Step);
        }
        catch (IOException)
        {
            // The failure itself is what matters; the status file is best effort.
        }
        ctx.Completion.TrySetResult(m.Result);
    }

    private Activity? StartChildSpan(string name) =>
        ColmTelemetry.Source.StartActivity(name, ActivityKind.Internal, _stepSpan?.Context ?? default);

    public void Dispose()
    {
        _phaseSpan?.Dispose();
        _stepSpan?.Dispose();
    }
}
