using CoLM.Data;

namespace CoLM.Cluster.Runs;

/// <summary>
/// A checkpoint's sampler position and pools index the training data it was written for; the
/// same run resumed over other data would train on other examples (or index past the end).
/// </summary>
public static class CheckpointDataFit
{
    /// <summary>Training examples per source name, as a checkpoint records them.</summary>
    public static IReadOnlyDictionary<string, int> PerSource(DataMixture data) =>
        data.SourceNames.Select((name, id) => (name, id)).ToDictionary(x => x.name, x => data.TrainCountPerSource[x.id], StringComparer.Ordinal);

    public static string? Problem(CoordinatorCheckpoint state, DataMixture data) => Problem(state, data.Train.Count, PerSource(data));

    /// <summary>How the data now differs from the data the checkpoint was written for, or null when it fits (or cannot be told apart).</summary>
    public static string? Problem(CoordinatorCheckpoint state, int trainExamples, IReadOnlyDictionary<string, int> perSource)
    {
        // Checkpoints written before the counts were recorded: only their sampler position tells.
        if (state.TrainExamples is not { } before)
            return state.SamplerPosition >= trainExamples
                ? $"written for more than {state.SamplerPosition} training examples (its sampler is at example {state.SamplerPosition}), the data now has {trainExamples}"
                : null;
        string sourcesBefore = state.TrainPerSource is { } was ? $" in {was.Count} sources" : "";
        if (before != trainExamples)
            return $"written for {before} training examples{sourcesBefore}, the data now has {trainExamples} in {perSource.Count} sources";
        if (state.TrainPerSource is not { } recorded) return null;
        foreach (var name in recorded.Keys.Union(perSource.Keys, StringComparer.Ordinal).Order(StringComparer.Ordinal))
        {
            int then = recorded.GetValueOrDefault(name), now = perSource.GetValueOrDefault(name);
            if (then != now)
                return $"written for {then} training examples of source '{name}', the data now has {now}";
        }
        return null;
    }
}
