using System.Diagnostics;
using System.Text.Json;

namespace CoLM.System.Tests;

/// <summary>Runs only where a Prometheus server binary is on PATH (CI: apt-get install -y prometheus).</summary>
public sealed class RequiresPrometheusFactAttribute : FactAttribute
{
    public static string? Binary() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, "prometheus")).FirstOrDefault(File.Exists);

    public RequiresPrometheusFactAttribute()
    {
        if (Binary() is null) Skip = "the prometheus binary is not on PATH (Debian: apt-get install -y prometheus)";
    }
}

/// <summary>
/// Every query of the Grafana dashboard (deploy/grafana/dashboards/colm.json) against a real
/// Prometheus scraping a real `colm train` (two trainers, evaluations and checkpoints, so every
/// metric has a reason to exist): each must return at least one series, so a panel that names a
/// metric the program does not export fails here.
/// </summary>
public sealed class GrafanaPanelTests : IDisposable
{
    private readonly TinyRun _tiny = new();

    public void Dispose() => _tiny.Dispose();

    [RequiresPrometheusFact]
    public async Task Every_panel_query_returns_series_from_a_real_prometheus_scraping_a_real_run()
    {
        var dashboard = JsonDocument.Parse(File.ReadAllText(Path.Combine(LocalMachine.RepoRoot(), "deploy", "grafana", "dashboards", "colm.json"))).RootElement;
        var queries = dashboard.GetProperty("panels").EnumerateArray()
            .SelectMany(p => p.GetProperty("targets").EnumerateArray().Select(t => (Title: p.GetProperty("title").GetString()!, Expr: t.GetProperty("expr").GetString()!)))
            .Concat(dashboard.GetProperty("templating").GetProperty("list").EnumerateArray()
                .Where(v => v.GetProperty("type").GetString() == "query")
                .Select(v => (Title: "variable " + v.GetProperty("name").GetString(), Expr: LabelValuesMetric(v.GetProperty("query").GetProperty("query").GetString()!))))
            .ToArray();
        Assert.True(queries.Length >= 20, $"{queries.Length} queries");

        int metricsPort = LocalMachine.FreePort(), apiPort = LocalMachine.FreePort();
        const int SigInt = 2;
        int pid = 0;
        var train = ColmProcess.RunAsync(_tiny.Root, p => pid = p, ["train", "--quiet", .. TinyRun.SetArgs(_tiny.Sets("scraped",
            "colm.train.steps=100000", "colm.train.eval-every=20", "colm.train.checkpoint-every=40",
            "colm.telemetry.exporter=prometheus", "colm.telemetry.http=on", $"colm.telemetry.http-port={metricsPort}"))]);
        string config = Path.Combine(_tiny.Root, "prometheus.yml");
        File.WriteAllText(config, $"""
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
            scrape_configs:
              - job_name: colm
                static_configs:
                  - targets: ["127.0.0.1:{metricsPort}"]
            """);
        var start = new ProcessStartInfo(RequiresPrometheusFactAttribute.Binary()!) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { $"--config.file={config}", $"--storage.tsdb.path={Path.Combine(_tiny.Root, "tsdb")}", $"--web.listen-address=127.0.0.1:{apiPort}" })
            start.ArgumentList.Add(arg);
        using var server = Process.Start(start)!;
        server.OutputDataReceived += (_, _) => { };
        server.ErrorDataReceived += (_, _) => { };
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();
        try
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            var empty = queries.ToList();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
            while (empty.Count > 0 && DateTime.UtcNow < deadline)
            {
                if (train.IsCompleted) throw new InvalidOperationException("the run ended: " + (await train).Stderr);
                foreach (var q in empty.ToArray())
                {
                    string expr = q.Expr.Replace("$__rate_interval", "15s").Replace("$run", ".+").Replace("$rank", ".+");
                    try
                    {
                        var answer = JsonDocument.Parse(await http.GetStringAsync(
                            $"http://127.0.0.1:{apiPort}/api/v1/query?query={Uri.EscapeDataString(expr)}")).RootElement;
                        Assert.True(answer.GetProperty("status").GetString() == "success", $"{q.Title}: {answer}");
                        if (answer.GetProperty("data").GetProperty("result").GetArrayLength() > 0) empty.Remove(q);
                    }
                    catch (HttpRequestException)
                    {
                        // Prometheus is not up yet.
                    }
                }
                await Task.Delay(1000);
            }
            Assert.True(empty.Count == 0, "panels whose query returned no series:\n" + string.Join("\n", empty.Select(q => $"{q.Title}: {q.Expr}")));
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
            ColmNodes.SendSignal(pid, SigInt);
            await train;
        }
    }

    /// <summary>label_values(METRIC{...}, label) names the series METRIC{...}: it must exist for the variable to list anything.</summary>
    private static string LabelValuesMetric(string query)
    {
        int open = query.IndexOf('(') + 1;
        int comma = query.LastIndexOf(',');
        return query[open..comma].Trim();
    }
}
