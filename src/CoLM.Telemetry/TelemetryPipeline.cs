using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
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

        bool pushes = exporters.Any(e => e is TelemetryOptions.ConsoleExporter or TelemetryOptions.FileExporter or TelemetryOptions.OtlpExporter);
        int intervalMs = pushes ? ExportIntervalMilliseconds(options) : 0;
        if (exporters.Contains(TelemetryOptions.FileExporter) && string.IsNullOrWhiteSpace(options.FilePath))
            throw new ArgumentException("The file telemetry exporter needs a file path.", nameof(options));
        JsonLinesFile? file = null;
        MeterProvider? meterProvider = null;
        try
        {
            // service.name "colm" and this process's instance: Prometheus shows them in target_info, OTLP on every batch.
            var resource = ResourceBuilder.CreateDefault().AddService(TelemetryOptions.ServiceName,
                serviceInstanceId: options.ServiceInstance.Length > 0 ? options.ServiceInstance : null);
            var meters = Sdk.CreateMeterProviderBuilder().SetResourceBuilder(resource).AddMeter(ColmTelemetry.MeterName);
            if (options.ProcessMetrics) meters.AddRuntimeInstrumentation().AddProcessInstrumentation();
            TracerProviderBuilder? traces = null;
            TracerProviderBuilder Traces() => traces ??= Sdk.CreateTracerProviderBuilder().SetResourceBuilder(resource).AddSource(ColmTelemetry.ActivitySourceName);
            foreach (string exporter in exporters)
            {
                switch (exporter)
                {
                    case TelemetryOptions.ConsoleExporter:
                        meters.AddConsoleExporter((_, reader) =>
                            reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = intervalMs);
                        Traces().AddConsoleExporter();
                        break;
                    case TelemetryOptions.FileExporter:
                        file = new JsonLinesFile(options.FilePath);
                        meters.AddReader(new PeriodicExportingMetricReader(new JsonLinesMetricExporter(file), intervalMs));
                        Traces().AddProcessor(new BatchActivityExportProcessor(new JsonLinesSpanExporter(file)));
                        break;
                    case TelemetryOptions.OtlpExporter:
                        meters.AddOtlpExporter((exporter, reader) =>
                        {
                            Otlp(exporter, options, "v1/metrics");
                            reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = intervalMs;
                        });
                        Traces().AddOtlpExporter(exporter => Otlp(exporter, options, "v1/traces"));
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

    /// <summary>
    /// The endpoint when one is configured: an http:// or https:// URL. With port 4318 (OTLP over
    /// HTTP) the signal's path is added; otherwise it is taken as a gRPC endpoint (4317).
    /// </summary>
    private static void Otlp(OpenTelemetry.Exporter.OtlpExporterOptions exporter, TelemetryOptions options, string signalPath)
    {
        if (options.OtlpEndpoint.Length == 0) return;
        if (!Uri.TryCreate(options.OtlpEndpoint, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new ArgumentException($"colm.telemetry.otlp-endpoint = \"{options.OtlpEndpoint}\" is not an http:// or https:// URL", nameof(options));
        bool http = uri.Port == 4318 || uri.AbsolutePath.TrimEnd('/').Length > 0;
        exporter.Protocol = http ? OpenTelemetry.Exporter.OtlpExportProtocol.HttpProtobuf : OpenTelemetry.Exporter.OtlpExportProtocol.Grpc;
        exporter.Endpoint = http ? new Uri(uri, uri.AbsolutePath.TrimEnd('/') + "/" + signalPath) : uri;
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
