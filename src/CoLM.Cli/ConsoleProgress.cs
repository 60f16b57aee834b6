using System.Globalization;
using CoLM.Cluster.Runs;

namespace CoLM.Cli;

/// <summary>
/// A live progress line on a terminal (redrawn in place); when output is redirected, a plain
/// line every tenth of the run so logs stay readable.
/// </summary>
public sealed class ConsoleProgress(bool quiet) : IRunObserver
{
    private readonly bool _interactive = !Console.IsOutputRedirected;
    private readonly Lock _lock = new();
    private bool _lineOpen;

    public void OnStep(StepReport r)
    {
        if (quiet) return;
        long every = Math.Max(1, r.TotalSteps / 10);
        if (!_interactive && r.Step % every != 0 && r.Step != r.TotalSteps) return;
        double fraction = (double)r.Step / r.TotalSteps;
        const int width = 24;
        int filled = (int)Math.Round(fraction * width);
        var eta = r.SamplesPerSecond > 0 && r.Samples > 0
            ? TimeSpan.FromSeconds((r.TotalSteps - r.Step) * r.Samples / r.SamplesPerSecond)
            : TimeSpan.Zero;
        string line = string.Create(CultureInfo.InvariantCulture,
            $"step {r.Step,5}/{r.TotalSteps} [{new string('#', filled)}{new string('.', width - filled)}] loss {r.Loss:0.0000}  {r.SamplesPerSecond:0.0} samples/s  ETA {eta:h\\:mm\\:ss}");
        Write(line, transient: _interactive);
    }

    public void OnEvaluation(EvalReport r)
    {
        if (quiet) return;
        Write(string.Create(CultureInfo.InvariantCulture,
            $"eval @ step {r.Step}: mean exact match {100 * r.MeanAccuracy:0.0}%, mean held-out loss {r.MeanLoss:0.0000}"), transient: false);
    }

    public void OnNotice(string message) => Write(message, transient: false);

    private void Write(string line, bool transient)
    {
        lock (_lock)
        {
            if (_lineOpen) Console.Write("\r\x1b[2K");
            if (transient) Console.Write(line);
            else Console.WriteLine(line);
            _lineOpen = transient;
        }
    }

    public void EndLine()
    {
        lock (_lock)
        {
            if (_lineOpen) Console.WriteLine();
            _lineOpen = false;
        }
    }
}
