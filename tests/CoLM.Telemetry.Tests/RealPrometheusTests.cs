using System.Diagnostics;
using System.Text.Json;
using Xunit;

namespace CoLM.Telemetry.Tests;

/// <summary>Runs only where a Prometheus server binary is on PATH (CI: apt-get install -y prometheus).</summary>
public sealed class RequiresPrometheusFactAttribute : FactAttribute
{
    public RequiresPrometheusFactAttribute()
    {
        if (PrometheusServer.Find() is null)
            Skip = "the prometheus binary is not on PATH (Debian/Ubuntu: apt-get install -y prometheus)";
    }
}

internal static class PrometheusServer
{
    public static string? Find() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, "prometheus"))
            .FirstOrDefault(File.Exists);
}

public sealed class RealPrometheusTests : IDisposable
{
    private static readonly HttpClient Client = new() { Timeout = TimeSpan.FromSeconds(10) };
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "colm-prom-server-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_directory))
            Directory.Delete(_directory, recursive: true);
    }

    [RequiresPrometheusFact]
    public async Task A_real_prometheus_scrapes_the_endpoint_and_answers_queries_for_the_metric()
    {
        int metricsPort = FreePort.Next();
        string runId = "run-" + Guid.NewGuid().ToString("N");
        using var pipeline = TelemetryPipeline.Start(new TelemetryOptions("prometheus", "", TimeSpan.FromSeconds(1)));
        await using var host = await Http.NodeHttpHost.StartAsync(new Http.HttpHostOptions("0.0.0.0", metricsPort), pipeline.Meters, () => true,
            new Dashboard.RunCatalog());
        using var instruments = new ColmInstruments(runId);
        instruments.OnStepCompleted(step: 3, loss: 2.0, duration: TimeSpan.FromSeconds(2), samples: 48);
        instruments.OnEvaluated("count.letters", accuracy: 0.25, loss: 3.0);

        Directory.CreateDirectory(_directory);
        string config = Path.Combine(_directory, "prometheus.yml");
        File.WriteAllText(config, $"""
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
            scrape_configs:
              - job_name: colm
                static_configs:
                  - targets: ["localhost:{metricsPort}"]
            """);
        int apiPort = FreePort.Next();
        var start = new ProcessStartInfo(PrometheusServer.Find()!)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in new[]
                 {
                     $"--config.file={config}", $"--storage.tsdb.path={Path.Combine(_directory, "data")}",
                     $"--web.listen-address=127.0.0.1:{apiPort}",
                 })
            start.ArgumentList.Add(arg);
        using var server = Process.Start(start)!;
        var log = new System.Text.StringBuilder();
        server.OutputDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        server.ErrorDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();
        try
        {
            string samples = await QueryUntilPresent(apiPort, $"colm_train_samples_total{{run=\"{runId}\"}}", log);
            Assert.Equal("48", samples);
            Assert.Equal("0.25", await QueryUntilPresent(apiPort,
                $"colm_eval_accuracy{{run=\"{runId}\",source=\"count.letters\"}}", log));
            // Scraped as OpenMetrics, whose bucket bounds are written "2.0".
            Assert.Equal("1", await QueryUntilPresent(apiPort,
                $"colm_train_loss_bucket{{run=\"{runId}\",le=~\"2(\\\\.0)?\"}}", log));
            Assert.Equal("1", await QueryUntilPresent(apiPort, $"up{{job=\"colm\"}}", log));
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
        }
    }

    /// <summary>Polls the instant-query API until the expression has a sample; returns its value.</summary>
    private static async Task<string> QueryUntilPresent(int apiPort, string expression, System.Text.StringBuilder log)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        string last = "";
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                string url = $"http://127.0.0.1:{apiPort}/api/v1/query?query={Uri.EscapeDataString(expression)}";
                last = await Client.GetStringAsync(url);
                var result = JsonDocument.Parse(last).RootElement.GetProperty("data").GetProperty("result");
                if (result.GetArrayLength() > 0)
                    return result[0].GetProperty("value")[1].GetString()!;
            }
            catch (HttpRequestException)
            {
                // not up yet
            }
            await Task.Delay(250);
        }
        string output;
        lock (log) output = log.ToString();
        throw new TimeoutException($"Prometheus never returned a sample for {expression}; last answer: {last}\nserver log:\n{output}");
    }
}
