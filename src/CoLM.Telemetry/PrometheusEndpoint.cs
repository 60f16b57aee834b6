using System.Net;
using System.Text;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace CoLM.Telemetry;

/// <summary>
/// The "prometheus" exporter: an <see cref="HttpListener"/> answering GET /metrics with the
/// metrics of the process in the Prometheus text format. Pull only: each scrape runs one collection
/// of <see cref="Reader"/> (cumulative, so scrapes never lose counts) and renders it.
/// Written here rather than taken from OpenTelemetry.Exporter.Prometheus.HttpListener because that
/// package builds its listener prefix from a host name, and on Linux HttpListener refuses 0.0.0.0:
/// it could not serve every interface, which a container's endpoint must.
/// </summary>
internal sealed class PrometheusEndpoint : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly SnapshotExporter _exporter = new();
    private readonly object _scrapeGate = new();
    private readonly Task _serving;
    private int _disposed;

    /// <exception cref="InvalidOperationException">The listener could not start (port in use, address not of this machine).</exception>
    public PrometheusEndpoint(string host, int port)
    {
        Reader = new BaseExportingMetricReader(_exporter) { TemporalityPreference = MetricReaderTemporalityPreference.Cumulative };
        foreach (string prefix in Prefixes(host, port))
            _listener.Prefixes.Add(prefix);
        try
        {
            _listener.Start();
        }
        catch (Exception e) when (e is HttpListenerException or SystemException)
        {
            _listener.Close();
            Reader.Dispose();
            throw new InvalidOperationException(
                $"The Prometheus metrics endpoint could not listen on {host}:{port} ({e.Message}); is the port in use, or the host not an address of this machine?", e);
        }
        Url = $"http://{host}:{port}{TelemetryOptions.PrometheusPath}";
        _serving = Task.Run(ServeAsync);
    }

    /// <summary>Added to the MeterProvider, which owns and disposes it.</summary>
    public MetricReader Reader { get; }

    public string Url { get; }

    /// <summary>
    /// HttpListener matches the request's Host header against its prefixes: a wildcard listens on
    /// every interface for any name; a loopback address also answers "localhost" and vice versa.
    /// </summary>
    internal static IReadOnlyList<string> Prefixes(string host, int port)
    {
        string h = host.Trim();
        if (h is "0.0.0.0" or "*" or "+" or "::" or "[::]")
            return [$"http://+:{port}/"];
        if (h is "127.0.0.1" or "localhost")
            return [$"http://127.0.0.1:{port}/", $"http://localhost:{port}/"];
        if (IPAddress.TryParse(h, out var address) && address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6)
            h = $"[{address}]";
        return [$"http://{h}:{port}/"];
    }

    private async Task ServeAsync()
    {
        while (Volatile.Read(ref _disposed) == 0)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync().ConfigureAwait(false);
            }
            catch (Exception) when (Volatile.Read(ref _disposed) != 0)
            {
                return;
            }
            catch (HttpListenerException)
            {
                continue;
            }
            try
            {
                Respond(context);
            }
            catch (Exception) // a scraper that went away must not stop the endpoint
            {
                try { context.Response.Abort(); } catch (ObjectDisposedException) { }
            }
        }
    }

    private void Respond(HttpListenerContext context)
    {
        var request = context.Request;
        using var response = context.Response;
        if (request.Url?.AbsolutePath.TrimEnd('/') != TelemetryOptions.PrometheusPath)
        {
            response.StatusCode = (int)HttpStatusCode.NotFound;
            return;
        }
        if (request.HttpMethod is not ("GET" or "HEAD"))
        {
            response.StatusCode = (int)HttpStatusCode.MethodNotAllowed;
            return;
        }
        byte[] body = Encoding.UTF8.GetBytes(Scrape());
        response.StatusCode = (int)HttpStatusCode.OK;
        response.ContentType = PrometheusText.ContentType;
        response.ContentLength64 = body.Length;
        if (request.HttpMethod == "GET")
            response.OutputStream.Write(body);
    }

    /// <summary>Collects now and returns the text; one scrape at a time.</summary>
    internal string Scrape()
    {
        lock (_scrapeGate)
        {
            _exporter.Last = "";
            Reader.Collect(timeoutMilliseconds: 10_000);
            return _exporter.Last;
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        _listener.Close();
        try
        {
            _serving.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }
    }

    /// <summary>Keeps the rendering of the latest collection; called by Collect on the scraping thread.</summary>
    private sealed class SnapshotExporter : BaseExporter<Metric>
    {
        public string Last { get; set; } = "";

        public override ExportResult Export(in Batch<Metric> batch)
        {
            var metrics = new List<Metric>();
            foreach (var metric in batch)
                metrics.Add(metric);
            Last = PrometheusText.Render(metrics);
            return ExportResult.Success;
        }
    }
}
