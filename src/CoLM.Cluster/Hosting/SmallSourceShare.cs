using CoLM.Cluster.Configuration;
using CoLM.Data;
using CoLM.Selection;
using CoLM.Training.Settings;

namespace CoLM.Cluster.Hosting;

/// <summary>Which sources of a run's data are small (COLM.md step 2), and whether they crowd out the large ones.</summary>
public static class SmallSourceShare
{
    /// <summary>colm.selection.small-sources: "auto" (below the mean training count) or the names given.</summary>
    public static bool[] Flags(SelectionSettings selection, DataMixture data)
    {
        if (selection.SmallSources is not { } manual) return SmallSources.BelowMeanSize(data.TrainCountPerSource);
        var flags = new bool[data.SourceNames.Count];
        foreach (var name in manual)
        {
            int id = data.SourceNames.ToList().IndexOf(name);
            if (id < 0) throw new ConfigException("colm.selection.small-sources", $"no source named '{name}' in the data (sources: {string.Join(", ", data.SourceNames)})");
            flags[id] = true;
        }
        return flags;
    }

    /// <summary>
    /// A line for the user when a pool is expected to hold more small-source examples than
    /// b - R, so most steps keep only a sample of them; null when they fit or nothing is balanced.
    /// </summary>
    public static string? Warning(SelectionSettings selection, DataMixture data)
    {
        if (!selection.SourceBalancing || selection.Method is SelectionMethod.Random or SelectionMethod.BigBatch) return null;
        bool[] small = Flags(selection, data);
        var counts = data.TrainCountPerSource;
        long total = counts.Sum(c => (long)c), smallTotal = counts.Where((_, q) => small[q]).Sum(c => (long)c);
        if (total == 0 || smallTotal == 0) return null;
        double expectedSmall = selection.Pool * (double)smallTotal / total;
        int largeSources = counts.Where((c, q) => c > 0 && !small[q]).Count();
        var balance = new SourceBalance(true, selection.LargeReserve);
        int reserve = balance.Reserve(selection.Budget, Math.Min(largeSources, selection.Pool), selection.Pool - (int)Math.Ceiling(expectedSmall));
        int room = selection.Budget - reserve;
        return expectedSmall <= room ? null
            : $"small sources hold {100.0 * smallTotal / total:0.#}% of the training data, so a pool of {selection.Pool} holds about " +
              $"{expectedSmall:0.#} of their examples, more than the {room} of b = {selection.Budget} left after the large sources' reserve " +
              $"R = {reserve} (colm.selection.large-source-reserve = {selection.LargeReserve}); such steps keep a proportional sample of {room} " +
              "and count it as smallLeftOut in metrics.jsonl";
    }
}
