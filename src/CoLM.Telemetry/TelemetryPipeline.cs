using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace CoLM.Telemetry;

/// <summary>
/// The process's OpenTelemetry providers: a MeterProvider listening to <see cref="ColmTelemetry.MeterName"/>
/// and a TracerProvider listening to <see cref="ColmTelemetry.ActivitySourceName"/>, exporting as
/// <see cref="TelemetryOptions"/> says. Start one per process at startup; Dispose at shutdown flushes
/// the last spans and a final metric collection before closing the output.
/// </summary>
public sealed class TelemetryPipeline : IDisposable
{
    private readonly MeterProvider? _meterProvider;
    private readonly TracerProvider? _tracerProvider;
    private readonly JsonLinesFile? _file;
    private bool _disposed;

    private TelemetryPipeline(MeterProvider? meterProvider, TracerProvider? tracerProvider, JsonLinesFile? file)
    {
        _meterProvider = meterProvider;
        _tracerProvider = tracerProvider;
        _file = file;
    }

    /// <exception cref="ArgumentException">Unknown exporter, missing file path, or a non-positive interval.</exception>
    public static TelemetryPipeline Start(TelemetryOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        string exporter = options.Exporter?.Trim().ToLowerInvariant() ?? "";
        switch (exporter)
        {
            case TelemetryOptions.NoneExporter:
                return new TelemetryPipeline(null, null, null);
            case TelemetryOptions.ConsoleExporter:
                return StartConsole(ExportIntervalMilliseconds(options));
            case TelemetryOptions.FileExporter:
                return StartFile(options.FilePath, ExportIntervalMilliseconds(options));
            default:
                throw new ArgumentException(
                    $"Unknown telemetry exporter '{options.Exporter}'; expected one of: {string.Join(", ", TelemetryOptions.Exporters)}.",
                    nameof(options));
        }
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        // Providers first: their shutdown exports what is still buffered, into the file that
        // is closed last.
        _tracerProvider?.Dispose();
        _meterProvider?.Dispose();
        _file?.Dispose();
    }

    private static TelemetryPipeline StartConsole(int intervalMs)
    {
        var meterProvider = Sdk.CreateMeterProviderBuilder()
            .AddMeter(ColmTelemetry.MeterName)
            .AddConsoleExporter((_, reader) =>
                reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = intervalMs)
            .Build();
        var tracerProvider = Sdk.CreateTracerProviderBuilder()
            .AddSource(ColmTelemetry.ActivitySourceName)
            .AddConsoleExporter()
            .Build();
        return new TelemetryPipeline(meterProvider, tracerProvider, null);
    }

    private static TelemetryPipeline StartFile(string filePath, int intervalMs)
    {
        if (string.IsNullOrWhiteSpace(filePath))
            throw new ArgumentException("The file telemetry exporter needs a file path.", nameof(filePath));

        var file = new JsonLinesFile(filePath);
        try
        {
            var meterProvider = Sdk.CreateMeterProviderBuilder()
                .AddMeter(ColmTelemetry.MeterName)
                .AddReader(new PeriodicExportingMetricReader(new JsonLinesMetricExporter(file), intervalMs))
                .Build();
            var tracerProvider = Sdk.CreateTracerProviderBuilder()
                .AddSource(ColmTelemetry.ActivitySourceName)
                .AddProcessor(new BatchActivityExportProcessor(new JsonLinesSpanExporter(file)))
                .Build();
            return new TelemetryPipeline(meterProvider, tracerProvider, file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
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
