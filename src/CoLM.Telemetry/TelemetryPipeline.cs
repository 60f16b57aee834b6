using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace CoLM.Telemetry;

/// <summary>
/// The process's OpenTelemetry providers: a MeterProvider listening to <see cref="ColmTelemetry.MeterName"/>
/// and a TracerProvider listening to <see cref="ColmTelemetry.ActivitySourceName"/>, exporting as
/// <see cref="TelemetryOptions"/> says (one or more of console, file, prometheus). Start one per
/// process at startup (the prometheus exporter holds a port); Dispose at shutdown flushes the last
/// spans and a final metric collection before closing the output.
/// </summary>
public sealed class TelemetryPipeline : IDisposable
{
    private readonly MeterProvider? _meterProvider;
    private readonly TracerProvider? _tracerProvider;
    private readonly JsonLinesFile? _file;
    private readonly PrometheusEndpoint? _prometheus;
    private bool _disposed;

    private TelemetryPipeline(MeterProvider? meterProvider, TracerProvider? tracerProvider, JsonLinesFile? file,
        PrometheusEndpoint? prometheus = null)
    {
        _meterProvider = meterProvider;
        _tracerProvider = tracerProvider;
        _file = file;
        _prometheus = prometheus;
    }

    /// <summary>The scrape URL of the prometheus exporter, or null when it is not enabled.</summary>
    public string? PrometheusUrl => _prometheus?.Url;

    /// <exception cref="ArgumentException">Unknown exporter, missing file path, a non-positive interval, or a bad Prometheus port.</exception>
    /// <exception cref="InvalidOperationException">The Prometheus endpoint could not listen (port in use, address not local).</exception>
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
        if (exporters.Contains(TelemetryOptions.PrometheusExporter))
            ValidatePrometheus(options);

        JsonLinesFile? file = null;
        PrometheusEndpoint? prometheus = null;
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
                        prometheus = new PrometheusEndpoint(options.PrometheusHost, options.PrometheusPort);
                        meters.AddReader(prometheus.Reader);
                        break;
                }
            }
            meterProvider = meters.Build();
            var tracerProvider = traces?.Build();
            return new TelemetryPipeline(meterProvider, tracerProvider, file, prometheus);
        }
        catch
        {
            prometheus?.Dispose();
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
        // The endpoint stops answering first; then the providers, whose shutdown exports what is
        // still buffered into the file that is closed last.
        _prometheus?.Dispose();
        _tracerProvider?.Dispose();
        _meterProvider?.Dispose();
        _file?.Dispose();
    }

    private static void ValidatePrometheus(TelemetryOptions options)
    {
        if (options.PrometheusPort is < 1 or > 65535)
            throw new ArgumentException(
                $"Prometheus port must be between 1 and 65535, got {options.PrometheusPort}.", nameof(options));
        if (string.IsNullOrWhiteSpace(options.PrometheusHost))
            throw new ArgumentException("The prometheus telemetry exporter needs a host (e.g. 127.0.0.1 or 0.0.0.0).", nameof(options));
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
