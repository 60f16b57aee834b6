namespace CoLM.Telemetry;

/// <summary>
/// Where telemetry goes. <paramref name="Exporter"/>: "none" (nothing is collected), "console"
/// (the OpenTelemetry console exporters) or "file" (JSON lines appended to <paramref name="FilePath"/>).
/// <paramref name="MetricInterval"/>: how often metrics are collected and exported; spans are
/// exported in batches and everything is flushed when the pipeline is disposed.
/// </summary>
public sealed record TelemetryOptions(string Exporter, string FilePath, TimeSpan MetricInterval)
{
    public const string NoneExporter = "none";
    public const string ConsoleExporter = "console";
    public const string FileExporter = "file";

    public static readonly IReadOnlyList<string> Exporters = [NoneExporter, ConsoleExporter, FileExporter];
}
