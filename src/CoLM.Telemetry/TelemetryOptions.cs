namespace CoLM.Telemetry;

/// <summary>
/// Where telemetry goes. <paramref name="Exporter"/>: "none" (nothing is collected), or one or more
/// of "console" (the OpenTelemetry console exporters), "file" (JSON lines appended to
/// <paramref name="FilePath"/>), "prometheus" (metrics in the Prometheus text format at /metrics
/// of the process's HTTP host, <see cref="Http.NodeHttpHost"/>) and "otlp" (metrics and spans
/// pushed over OTLP to <paramref name="OtlpEndpoint"/>, or where OTEL_EXPORTER_OTLP_ENDPOINT says
/// when empty), separated by commas, e.g. "file,prometheus".
/// <paramref name="MetricInterval"/>: how often metrics are pushed to the console, file and otlp
/// exporters (Prometheus pulls: each scrape collects); spans are exported in batches and everything
/// is flushed when the pipeline is disposed.
/// <paramref name="ServiceInstance"/>: this process's service.instance.id (its node address) in
/// the resource every exporter sends (service.name is "colm"); <paramref name="ProcessMetrics"/>:
/// also collect .NET runtime and process metrics (once per process, in its process-wide pipeline).
/// </summary>
public sealed record TelemetryOptions(string Exporter, string FilePath, TimeSpan MetricInterval, string OtlpEndpoint = "",
    string ServiceInstance = "", bool ProcessMetrics = false)
{
    public const string NoneExporter = "none";
    public const string ConsoleExporter = "console";
    public const string FileExporter = "file";
    public const string PrometheusExporter = "prometheus";
    public const string OtlpExporter = "otlp";
    /// <summary>TensorBoard event files in the run directory: written by the run's recorder from its rows, not by OpenTelemetry.</summary>
    public const string TensorBoardExporter = "tensorboard";
    public const string ServiceName = "colm";

    /// <summary>The path Prometheus scrapes.</summary>
    public const string PrometheusPath = "/metrics";

    public static readonly IReadOnlyList<string> Exporters = [NoneExporter, ConsoleExporter, FileExporter, PrometheusExporter, OtlpExporter, TensorBoardExporter];

    /// <summary>
    /// Splits an exporter list into the process-wide part (prometheus and otlp: one endpoint or
    /// connection per process, whatever runs it hosts) and the per-run part (console, file: the
    /// file is in the run directory); each part is "none" when empty.
    /// </summary>
    public static (string PerProcess, string PerRun) SplitPerProcess(string? exporter)
    {
        var names = ParseExporters(exporter);
        string[] process = [.. names.Where(n => n is PrometheusExporter or OtlpExporter)];
        string[] run = [.. names.Where(n => n is not (PrometheusExporter or OtlpExporter or TensorBoardExporter))];
        return (process.Length == 0 ? NoneExporter : string.Join(",", process), run.Length == 0 ? NoneExporter : string.Join(",", run));
    }

    /// <summary>
    /// The exporters named by a comma-separated <paramref name="exporter"/> value, each once, in
    /// order; empty for "none".
    /// </summary>
    /// <exception cref="ArgumentException">An unknown name, an empty entry, or "none" combined with another exporter.</exception>
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
