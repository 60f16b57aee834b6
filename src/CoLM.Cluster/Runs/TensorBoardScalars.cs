using CoLM.Cluster.Coordination;

namespace CoLM.Cluster.Runs;

/// <summary>
/// The "tensorboard" exporter: the run's scalars as TensorBoard event files in RUN/tensorboard
/// (`tensorboard --logdir RUN/tensorboard`), written with TorchSharp's SummaryWriter from the same
/// rows metrics.jsonl gets: train/loss, train/lr, train/grad_norm, train/samples_per_second,
/// train/tokens_per_second, time/step_seconds, time/phase/NAME, eval/mean_loss, eval/mean_exact_match,
/// eval/loss/SOURCE and eval/exact_match/SOURCE, checkpoint/pause_seconds. The writer appends each
/// event to its file as it is added: nothing waits in memory for a flush.
/// </summary>
public sealed class TensorBoardScalars
{
    public const string Exporter = Telemetry.TelemetryOptions.TensorBoardExporter;
    public const string FolderName = "tensorboard";

    private readonly TorchSharp.Modules.SummaryWriter _writer;

    public TensorBoardScalars(RunDirectory run) =>
        _writer = TorchSharp.torch.utils.tensorboard.SummaryWriter(Path.Combine(run.Path, FolderName));

    public void Step(StepRow row)
    {
        int step = checked((int)row.Step);
        Add("train/loss", row.Loss, step);
        Add("train/lr", row.Lr, step);
        Add("train/grad_norm", row.GradNorm, step);
        Add("train/samples_per_second", row.SamplesPerSecond, step);
        Add("train/tokens_per_second", row.TokensPerSecond, step);
        Add("time/step_seconds", row.StepSeconds, step);
        foreach (var (phase, seconds) in row.Phases) Add("time/phase/" + phase, seconds, step);
    }

    public void Eval(EvalRow row)
    {
        int step = checked((int)row.Step);
        Add("eval/mean_loss", row.MeanLoss, step);
        Add("eval/mean_exact_match", row.MeanAccuracy, step);
        foreach (var (source, score) in row.Sources)
        {
            Add("eval/loss/" + source, score.Loss, step);
            Add("eval/exact_match/" + source, score.Accuracy, step);
        }
    }

    public void Checkpoint(CheckpointRow row) => Add("checkpoint/pause_seconds", row.PauseSeconds, checked((int)row.Step));

    private void Add(string tag, double value, int step) => _writer.add_scalar(tag, (float)value, step);
}
