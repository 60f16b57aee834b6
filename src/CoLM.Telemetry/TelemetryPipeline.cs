using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace CoLM.Telemetry;

/// <summary>
/// The process's OpenTelemetry providers: a MeterProvider listening to <see cref="ColmTelemetry.MeterName"/>
/// and a TracerProvider listening to <see cref="ColmTelemetry.ActivitySourceName"/>, exporting as
/// <see cref="TelemetryOptions"/> says (one or more of console, file, prometheus). The prometheus
/// exporter is OpenTelemetry's ASP.NET Core one: it collects on each scrape of /metrics, which the
/// process's <see cref="Http.NodeHttpHost"/> serves from <see cref="Meters"/>. Dispose at shutdown
/// flushes the last spans and a final metric collection before closing the output.
/// </summary>
public sealed class TelemetryPipeline : IDisposable
{
    private readonly MeterProvider? _meterProvider;
    private readonly TracerProvider? _tracerProvider;
    private readonly JsonLinesFile? _file;
    private bool _disposed;

    private TelemetryPipeline(MeterProvider? meterProvider, TracerProvider? tracerProvider, JsonLinesFile? file, bool servesPrometheus = false)
    {
        _meterProvider = meterProvider;
        _tracerProvider = tracerProvider;
        _file = file;
        Meters = servesPrometheus ? meterProvider : null;
    }

    /// <summary>The meter provider whose Prometheus exporter /metrics serves, or null when the prometheus exporter is not on.</summary>
    public MeterProvider? Meters { get; }

    /// <exception cref="ArgumentException">Unknown exporter, missing file path, or a non-positive interval.</exception>
    public static TelemetryPipeline Start(TelemetryOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var exporters = TelemetryOptions.ParseExporters(options.Exporter);
        if (exporters.Count == 0)
            return new TelemetryPipeline(null, null, null);

        bool pushes = exporters.Contains(TelemetryOptions.ConsoleExporter) || exporters.Contains(TelemetryOptions.FileExporter);
        int intervalMs = pushes ? ExportIntervalMilliseconds(options) : 0;
        if (exporters.Contains(TelemetryOptions.FileExporter) && string.IsNullOrWhiteSpace(options.FilePath))
            throw new ArgumentException("The file telemetry exporter needs a file path.", nameof(options));
        JsonLinesFile? file = null;
        MeterProvider? meterProvider = null;
        try
        {
            var meters = Sdk.CreateMeterProviderBuilder().AddMeter(ColmTelemetry.MeterName);
            TracerProviderBuilder? traces = null;
            foreach (string exporter in exporters)
            {
                switch (exporter)
                {
                    case TelemetryOptions.ConsoleExporter:
                        meters.AddConsoleExporter((_, reader) =>
                            reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = intervalMs);
                        traces ??= Sdk.CreateTracerProviderBuilder().AddSource(ColmTelemetry.ActivitySourceName);
                        traces.AddConsoleExporter();
                        break;
                    case TelemetryOptions.FileExporter:
                        file = new JsonLinesFile(options.FilePath);
                        meters.AddReader(new PeriodicExportingMetricReader(new JsonLinesMetricExporter(file), intervalMs));
                        traces ??= Sdk.CreateTracerProviderBuilder().AddSource(ColmTelemetry.ActivitySourceName);
                        traces.AddProcessor(new BatchActivityExportProcessor(new JsonLinesSpanExporter(file)));
                        break;
                    case TelemetryOptions.PrometheusExporter:
                        meters.AddPrometheusExporter(o => o.ScrapeEndpointPath = TelemetryOptions.PrometheusPath);
                        break;
                }
            }
            meterProvider = meters.Build();
            var tracerProvider = traces?.Build();
            return new TelemetryPipeline(meterProvider, tracerProvider, file, exporters.Contains(TelemetryOptions.PrometheusExporter));
        }
        catch
        {
            meterProvider?.Dispose();
            file?.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        // The providers' shutdown exports what is still buffered into the file that is closed last.
        _tracerProvider?.Dispose();
        _meterProvider?.Dispose();
        _file?.Dispose();
    }

    private static int ExportIntervalMilliseconds(TelemetryOptions options)
    {
        double ms = options.MetricInterval.TotalMilliseconds;
        if (ms < 1 || ms > int.MaxValue)
            throw new ArgumentException(
                $"Telemetry metric interval must be between 1 ms and {int.MaxValue} ms, got {options.MetricInterval}.",
                nameof(options));
        return (int)ms;
    }
}
