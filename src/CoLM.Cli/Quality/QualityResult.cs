using System.Text.Json;

namespace CoLM.Cli.Quality;

/// <summary>One evaluation of a finished run: step, wall time since the run started, scores.</summary>
/// <param name="Loss">Held-out loss per source (null in results saved before it was recorded).</param>
public sealed record EvalPoint(long Step, double ElapsedSeconds, double MeanLoss, double MeanAccuracy, IReadOnlyDictionary<string, double> Accuracy,
    IReadOnlyDictionary<string, double>? Loss = null);

/// <summary>What one (variant, seed) run produced; saved beside the run so a comparison can resume.</summary>
/// <param name="LearningRate">The peak learning rate of the run (0 in results saved before it was recorded).</param>
/// <param name="TrainShare">Each source's share of the training data (null in results saved before it was recorded).</param>
public sealed record QualityResult(string Variant, long Seed, double WallSeconds, long PeakBytesAboveBaseline, IReadOnlyList<EvalPoint> Evals,
    double LearningRate = 0, IReadOnlyDictionary<string, double>? TrainShare = null)
{
    public EvalPoint Final => Evals[^1];

    /// <summary>
    /// Final held-out loss per source weighted by the source's share of the training data: the loss
    /// a user whose test set looks like their training mix sees, where MeanLoss (every source
    /// alike) is what a user who cares for each skill equally sees. Null without both records.
    /// </summary>
    public double? FinalWeightedLoss => TrainShare is null || Final.Loss is null || TrainShare.Keys.Any(s => !Final.Loss.ContainsKey(s))
        ? null
        : TrainShare.Sum(kv => kv.Value * Final.Loss[kv.Key]);

    public static IReadOnlyDictionary<string, double> SharesOf(IReadOnlyList<string> sourceNames, IReadOnlyList<int> trainCountPerSource)
    {
        double total = trainCountPerSource.Sum();
        return sourceNames.Select((name, id) => (name, id)).ToDictionary(x => x.name, x => trainCountPerSource[x.id] / total, StringComparer.Ordinal);
    }

    /// <summary>First evaluated step whose mean held-out loss is at or below the target; null if never.</summary>
    public long? StepsToLoss(double target) => Evals.FirstOrDefault(e => e.MeanLoss <= target)?.Step;

    public static IReadOnlyList<EvalPoint> ReadEvals(string metricsFile)
    {
        var evals = new List<EvalPoint>();
        foreach (var line in File.ReadLines(metricsFile))
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            if (root.GetProperty("kind").GetString() != "eval") continue;
            var sources = root.GetProperty("sources").EnumerateObject().ToArray();
            var accuracy = sources.ToDictionary(p => p.Name, p => p.Value.GetProperty("accuracy").GetDouble());
            var loss = sources.ToDictionary(p => p.Name, p => p.Value.GetProperty("loss").GetDouble());
            evals.Add(new EvalPoint(root.GetProperty("step").GetInt64(), root.GetProperty("elapsedSeconds").GetDouble(),
                root.GetProperty("meanLoss").GetDouble(), root.GetProperty("meanAccuracy").GetDouble(), accuracy, loss));
        }
        return evals;
    }
}
