namespace CoLM.Selection;

/// <summary>
/// What each <see cref="SelectionMethod"/> needs from the caller, and its configuration name.
/// The caller computes a loss or a gradient feature only for the pool rows a method looks at:
/// with source balancing, small-source rows are kept without a look, so only large-source rows
/// need them; without it every row is a candidate.
/// </summary>
public static class SelectionMethods
{
    private static readonly (SelectionMethod Method, string Name)[] Names =
    [
        (SelectionMethod.Colm, "colm"),
        (SelectionMethod.Random, "random"),
        (SelectionMethod.BigBatch, "big-batch"),
        (SelectionMethod.SourceBalancedRandom, "source-balanced-random"),
        (SelectionMethod.BigLoss, "big-loss"),
        (SelectionMethod.SmallLoss, "small-loss"),
        (SelectionMethod.GradNorm, "grad-norm"),
    ];

    /// <summary>True when the method ranks by <see cref="PoolSketch.Losses"/> (BigLoss, SmallLoss). CoLM reads losses only for telemetry.</summary>
    public static bool NeedsLosses(SelectionMethod method) =>
        method is SelectionMethod.BigLoss or SelectionMethod.SmallLoss;

    /// <summary>True when the method needs a gradient feature per candidate row (sketch coefficients or dense <see cref="PoolSketch.Features"/>): Colm, GradNorm.</summary>
    public static bool NeedsFeatures(SelectionMethod method) =>
        method is SelectionMethod.Colm or SelectionMethod.GradNorm;

    /// <summary>
    /// True when small-source rows are candidates too and so need their loss or feature computed:
    /// source balancing off, for the methods that look at rows (Colm, GradNorm, BigLoss, SmallLoss).
    /// With balancing on, small-source rows are kept without a look; Random, BigBatch and
    /// SourceBalancedRandom never look.
    /// </summary>
    public static bool SketchesSmallSources(SelectionMethod method, bool sourceBalancing) =>
        !sourceBalancing && (NeedsFeatures(method) || NeedsLosses(method));

    /// <summary>The configuration name: colm, random, big-batch, source-balanced-random, big-loss, small-loss, grad-norm.</summary>
    public static string Name(SelectionMethod method)
    {
        foreach (var (m, name) in Names)
            if (m == method) return name;
        throw new ArgumentOutOfRangeException(nameof(method), method, "Unknown selection method.");
    }

    /// <summary>The method of a configuration name (case-insensitive, surrounding blanks ignored); ArgumentException listing the names otherwise.</summary>
    public static SelectionMethod Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        string wanted = name.Trim();
        foreach (var (m, n) in Names)
            if (string.Equals(n, wanted, StringComparison.OrdinalIgnoreCase)) return m;
        throw new ArgumentException(
            $"Unknown selection method '{name}'; expected one of: {string.Join(", ", Names.Select(x => x.Name))}.", nameof(name));
    }
}
