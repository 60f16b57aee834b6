namespace CoLM.Telemetry;

/// <summary>
/// Where telemetry goes. <paramref name="Exporter"/>: "none" (nothing is collected), or one or more
/// of "console" (the OpenTelemetry console exporters), "file" (JSON lines appended to
/// <paramref name="FilePath"/>) and "prometheus" (metrics in the Prometheus text format at /metrics
/// of the process's HTTP host, <see cref="Http.NodeHttpHost"/>), separated by commas, e.g. "file,prometheus".
/// <paramref name="MetricInterval"/>: how often metrics are pushed to the console and file
/// exporters (Prometheus pulls: each scrape collects); spans are exported in batches and everything
/// is flushed when the pipeline is disposed.
/// </summary>
public sealed record TelemetryOptions(string Exporter, string FilePath, TimeSpan MetricInterval)
{
    public const string NoneExporter = "none";
    public const string ConsoleExporter = "console";
    public const string FileExporter = "file";
    public const string PrometheusExporter = "prometheus";

    /// <summary>The path Prometheus scrapes.</summary>
    public const string PrometheusPath = "/metrics";

    public static readonly IReadOnlyList<string> Exporters = [NoneExporter, ConsoleExporter, FileExporter, PrometheusExporter];

    /// <summary>
    /// The exporters named by a comma-separated <paramref name="exporter"/> value, each once, in
    /// order; empty for "none".
    /// </summary>
    /// <exception cref="ArgumentException">An unknown name, an empty entry, or "none" combined with another exporter.</exception>
    /// <summary>
    /// Splits an exporter list into the process-wide Prometheus endpoint (one per process: it
    /// owns a port) and the rest (per run); each part is "none" when empty.
    /// </summary>
    public static (string PerProcess, string PerRun) SplitPrometheus(string? exporter)
    {
        var names = ParseExporters(exporter);
        var rest = names.Where(n => n != PrometheusExporter).ToArray();
        return (names.Contains(PrometheusExporter) ? PrometheusExporter : NoneExporter, rest.Length == 0 ? NoneExporter : string.Join(",", rest));
    }

    public static IReadOnlyList<string> ParseExporters(string? exporter)
    {
        var names = (exporter ?? "").Split(',').Select(x => x.Trim().ToLowerInvariant()).ToList();
        foreach (string name in names)
        {
            if (!Exporters.Contains(name))
                throw new ArgumentException(
                    $"Unknown telemetry exporter '{name}' in '{exporter}'; expected one of: {string.Join(", ", Exporters)}, or several separated by commas (e.g. file,prometheus).",
                    nameof(exporter));
        }
        if (names.Contains(NoneExporter))
        {
            if (names.Any(n => n != NoneExporter))
                throw new ArgumentException($"Telemetry exporter '{exporter}': none cannot be combined with other exporters.", nameof(exporter));
            return [];
        }
        return names.Distinct(StringComparer.Ordinal).ToList();
    }
}
