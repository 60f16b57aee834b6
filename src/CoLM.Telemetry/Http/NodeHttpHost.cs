using System.Net;
using System.Net.Sockets;
using CoLM.Telemetry.Dashboard;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;

namespace CoLM.Telemetry.Http;

/// <summary>The HTTP host cannot listen where its settings say (a port in use, an address not of this machine): the user's to fix.</summary>
public sealed class HttpHostException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A cluster member as the dashboard lists it.</summary>
public sealed record MemberView(string Address, IReadOnlyList<string> Roles, string Status, bool Reachable);

/// <summary>Where a node's HTTP host listens; "0.0.0.0" (or "*") on every IPv4 interface, "localhost" on loopback.</summary>
public sealed record HttpHostOptions(string Host, int Port);

/// <summary>
/// The one HTTP host of a colm process, on Kestrel: GET /metrics (Prometheus text, from
/// OpenTelemetry's ASP.NET Core exporter, when the pipeline has the prometheus exporter),
/// /healthz (the process answers), /readyz (the node is a cluster member and can take work:
/// 503 until then), and the live dashboard at / with its run feed under /api (<see cref="DashboardEndpoints"/>).
/// </summary>
public sealed class NodeHttpHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private NodeHttpHost(WebApplication app, string url)
    {
        _app = app;
        Url = url;
    }

    /// <summary>The host's base URL, e.g. http://127.0.0.1:9464/.</summary>
    public string Url { get; }

    /// <param name="meters">The meter provider whose Prometheus exporter /metrics serves; null: /metrics answers 404 saying how to turn it on.</param>
    /// <param name="ready">Whether /readyz answers 200.</param>
    /// <param name="runs">The runs the dashboard shows.</param>
    /// <param name="members">The cluster's members as this node sees them (GET /api/nodes); null where there is no cluster (`colm dashboard`).</param>
    /// <exception cref="HttpHostException">The port is in use or the host is not an address of this machine (the message names both).</exception>
    public static async Task<NodeHttpHost> StartAsync(HttpHostOptions options, MeterProvider? meters, Func<bool> ready, RunCatalog runs,
        Func<IReadOnlyList<MemberView>>? members = null)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "colm" });
        builder.Logging.ClearProviders();
        var address = Address(options.Host);
        builder.WebHost.ConfigureKestrel(k => k.Listen(address, options.Port));
        var app = builder.Build();
        if (meters is not null)
            app.UseOpenTelemetryPrometheusScrapingEndpoint(meters, predicate: null, path: TelemetryOptions.PrometheusPath, configureBranchedPipeline: null, optionsName: null);
        else
            app.MapGet(TelemetryOptions.PrometheusPath, () => Results.Text(
                "no Prometheus metrics here: add prometheus to colm.telemetry.exporter (e.g. \"file,prometheus\")\n", statusCode: 404));
        app.MapGet("/healthz", () => Results.Text("ok\n"));
        app.MapGet("/readyz", () => ready() ? Results.Text("ready\n") : Results.Text("not ready: not a cluster member yet\n", statusCode: 503));
        DashboardEndpoints.Map(app, runs);
        app.MapGet("/api/nodes", () => Results.Json(members?.Invoke() ?? []));
        try
        {
            await app.StartAsync();
        }
        catch (IOException e)
        {
            await app.DisposeAsync();
            throw new HttpHostException(
                $"the HTTP host (metrics, health, dashboard) could not listen on {options.Host}:{options.Port}: {e.Message} " +
                "Is the port in use by another colm process? Set another with colm.telemetry.http-port, or colm.telemetry.http = off.", e);
        }
        string shown = address.Equals(IPAddress.Any) ? "127.0.0.1" : address.ToString();
        return new NodeHttpHost(app, $"http://{shown}:{options.Port}/");
    }

    private static IPAddress Address(string host) => host.Trim() switch
    {
        "0.0.0.0" or "*" or "+" => IPAddress.Any,
        "localhost" => IPAddress.Loopback,
        var text when IPAddress.TryParse(text, out var ip) => ip,
        var text => throw new HttpHostException(
            $"colm.telemetry.http-host = \"{text}\" is not an IP address of this machine (or 0.0.0.0 for every interface, localhost for loopback)"),
    };

    public async ValueTask DisposeAsync()
    {
        using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await _app.StopAsync(patience.Token);
        await _app.DisposeAsync();
    }
}
