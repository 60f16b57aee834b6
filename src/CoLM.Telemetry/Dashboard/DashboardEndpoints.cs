using System.Reflection;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace CoLM.Telemetry.Dashboard;

/// <summary>
/// The dashboard's routes: the page and its scripts (embedded in this assembly, so nothing is
/// fetched from outside the machine), GET /api/runs (the runs listed), and
/// GET /api/runs/{index}/events: the run's metrics.jsonl rows and status.json as server-sent
/// events (<see cref="RunFeed"/>), from the first row, then live.
/// </summary>
public static class DashboardEndpoints
{
    private static readonly Dictionary<string, string> Assets = new()
    {
        ["/"] = "page/index.html",
        ["/dashboard.js"] = "page/dashboard.js",
        ["/dashboard.css"] = "page/dashboard.css",
        ["/uplot.js"] = "page/uplot.js",
        ["/uplot.css"] = "page/uplot.css",
    };

    public static void Map(IEndpointRouteBuilder app, RunCatalog runs)
    {
        foreach (var (path, resource) in Assets)
        {
            byte[] bytes = Read(resource);
            string type = ContentType(resource);
            app.MapGet(path, () => Results.Bytes(bytes, type));
        }
        app.MapGet("/api/runs", () => Results.Json(runs.All.Select((r, i) => new { index = i, name = r.Name, directory = r.Directory })));
        app.MapGet("/api/runs/{index:int}/events", async (int index, HttpContext http) =>
        {
            var all = runs.All;
            if (index < 0 || index >= all.Count)
            {
                http.Response.StatusCode = 404;
                await http.Response.WriteAsync($"no run {index}: this dashboard lists {all.Count}\n");
                return;
            }
            await RunFeed.StreamAsync(all[index], http.Response, http.RequestAborted);
        });
    }

    private static byte[] Read(string resource)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(resource)
                           ?? throw new InvalidOperationException($"the dashboard's {resource} is missing from the build (was npm ci run? see CoLM.Telemetry.csproj)");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    private static string ContentType(string resource) => Path.GetExtension(resource) switch
    {
        ".html" => "text/html; charset=utf-8",
        ".js" => "text/javascript; charset=utf-8",
        ".css" => "text/css; charset=utf-8",
        _ => "application/octet-stream",
    };
}
