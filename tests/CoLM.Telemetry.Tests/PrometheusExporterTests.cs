using System.Net;
using System.Net.Sockets;
using Xunit;

namespace CoLM.Telemetry.Tests;

public sealed class PrometheusExporterTests : IDisposable
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(30) };
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "colm-prometheus-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_directory))
            Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task Metrics_endpoint_serves_recorded_metrics_in_the_prometheus_text_format()
    {
        int port = FreePort.Next();
        string runId = "run-" + Guid.NewGuid().ToString("N");
        using var pipeline = TelemetryPipeline.Start(new TelemetryOptions("prometheus", "", TimeSpan.FromSeconds(1), "127.0.0.1", port));
        using var instruments = new ColmInstruments(runId);
        Assert.Equal($"http://127.0.0.1:{port}/metrics", pipeline.PrometheusUrl);

        instruments.OnStepCompleted(step: 7, loss: 2.5, duration: TimeSpan.FromSeconds(1), samples: 32);
        instruments.OnStepCompleted(step: 8, loss: 1.5, duration: TimeSpan.FromSeconds(3), samples: 32);
        instruments.OnSelected("arith.add", 12);
        instruments.OnEvaluated("arith.add", accuracy: 0.75, loss: 0.9);

        using var response = await Http.GetAsync($"http://127.0.0.1:{port}/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        var lines = (await response.Content.ReadAsStringAsync()).Split('\n');

        string run = $"run=\"{runId}\"";
        Assert.Contains("# TYPE colm_train_samples_total counter", lines);
        Assert.Contains($"colm_train_samples_total{{{run}}} 64", lines);
        Assert.Contains("# TYPE colm_train_loss histogram", lines);
        Assert.Contains($"colm_train_loss_sum{{{run}}} 4", lines);
        Assert.Contains($"colm_train_loss_count{{{run}}} 2", lines);
        Assert.Contains($"colm_train_loss_bucket{{{run},le=\"1.5\"}} 1", lines);
        Assert.Contains($"colm_train_loss_bucket{{{run},le=\"+Inf\"}} 2", lines);
        Assert.Contains($"colm_step_duration_seconds_sum{{{run}}} 4", lines);
        Assert.Contains($"colm_selection_selected_total{{{run},source=\"arith.add\"}} 12", lines);
        Assert.Contains($"colm_eval_accuracy_ratio{{{run},source=\"arith.add\"}} 0.75", lines);
        Assert.Contains($"colm_train_step{{{run}}} 8", lines);
        // Each family is declared once even when other tests' instruments report the same names.
        Assert.Single(lines, l => l == "# TYPE colm_train_loss histogram");

        // "localhost" reaches a loopback endpoint too (HttpListener matches the Host header).
        using var byName = await Http.GetAsync($"http://localhost:{port}/metrics");
        Assert.Equal(HttpStatusCode.OK, byName.StatusCode);
        using var elsewhere = await Http.GetAsync($"http://127.0.0.1:{port}/other");
        Assert.Equal(HttpStatusCode.NotFound, elsewhere.StatusCode);
    }

    [Fact]
    public async Task File_and_prometheus_exporters_combine()
    {
        int port = FreePort.Next();
        string path = Path.Combine(_directory, "telemetry.jsonl");
        string runId = "run-" + Guid.NewGuid().ToString("N");
        var pipeline = TelemetryPipeline.Start(new TelemetryOptions(" file , prometheus ", path, TimeSpan.FromMinutes(10), "0.0.0.0", port));
        using var instruments = new ColmInstruments(runId);
        instruments.OnTrainerRestarted(rank: 1);
        using (ColmTelemetry.Source.StartActivity(ColmTelemetry.ResyncSpan)) { }

        // 0.0.0.0 listens on every interface and answers whatever name the scraper used.
        var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{port}/metrics");
        request.Headers.Host = $"colm-0.colm:{port}";
        using var response = await Http.SendAsync(request);
        string body = await response.Content.ReadAsStringAsync();
        Assert.Contains($"colm_trainer_restarts_total{{run=\"{runId}\",rank=\"1\"}} 1\n", body, StringComparison.Ordinal);

        pipeline.Dispose();
        string file = File.ReadAllText(path);
        Assert.Contains(ColmTelemetry.ResyncSpan, file, StringComparison.Ordinal);
        Assert.Contains("colm.trainer.restarts", file, StringComparison.Ordinal);
        await Assert.ThrowsAsync<HttpRequestException>(() => Http.GetAsync($"http://127.0.0.1:{port}/metrics"));
    }

    [Fact]
    public void A_port_in_use_fails_the_start_naming_the_port()
    {
        using var blocker = new TcpListener(IPAddress.Loopback, 0);
        blocker.Start();
        int port = ((IPEndPoint)blocker.LocalEndpoint).Port;
        var error = Assert.Throws<InvalidOperationException>(() =>
            TelemetryPipeline.Start(new TelemetryOptions("prometheus", "", TimeSpan.FromSeconds(1), "127.0.0.1", port)));
        Assert.Contains($"127.0.0.1:{port}", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("none,file")]
    [InlineData("file,")]
    [InlineData("file,otlp")]
    public void Bad_exporter_lists_are_rejected(string exporter)
    {
        Assert.Throws<ArgumentException>(() => TelemetryOptions.ParseExporters(exporter));
    }

    [Fact]
    public void Exporter_lists_parse_in_order_without_repeats()
    {
        Assert.Equal(["file", "prometheus"], TelemetryOptions.ParseExporters("File, prometheus,file"));
        Assert.Empty(TelemetryOptions.ParseExporters("none"));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(70000)]
    public void Out_of_range_prometheus_ports_are_rejected(int port)
    {
        Assert.Throws<ArgumentException>(() =>
            TelemetryPipeline.Start(new TelemetryOptions("prometheus", "", TimeSpan.FromSeconds(1), "127.0.0.1", port)));
    }
}
