using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Xunit;

namespace CoLM.Telemetry.Tests;

/// <summary>
/// The otlp exporter (OpenTelemetry's own) sending to a receiver on loopback that keeps what it
/// gets: OTLP over HTTP is protobuf, whose strings (metric, span and attribute names) are plain UTF-8.
/// </summary>
public sealed class OtlpExporterTests
{
    [Fact]
    public async Task Metrics_and_spans_go_over_otlp_http_with_the_service_name_and_instance()
    {
        int port = FreePort.Next();
        using var receiver = new HttpListener();
        receiver.Prefixes.Add($"http://127.0.0.1:{port}/");
        receiver.Start();
        var received = new ConcurrentBag<(string Path, string ContentType, byte[] Body)>();
        var serving = Task.Run(async () =>
        {
            while (receiver.IsListening)
            {
                HttpListenerContext context;
                try { context = await receiver.GetContextAsync(); }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException) { return; }
                using var body = new MemoryStream();
                await context.Request.InputStream.CopyToAsync(body);
                received.Add((context.Request.Url!.AbsolutePath, context.Request.ContentType ?? "", body.ToArray()));
                context.Response.StatusCode = 200;
                context.Response.Close();
            }
        });

        string runId = "run-" + Guid.NewGuid().ToString("N");
        var pipeline = TelemetryPipeline.Start(new TelemetryOptions("otlp", "", TimeSpan.FromSeconds(60), $"http://127.0.0.1:{port}/collector",
            ServiceInstance: "akka.tcp://colm@10.0.0.7:2551", ProcessMetrics: true));
        using (var instruments = new ColmInstruments(runId))
        {
            instruments.OnStepCompleted(step: 1, loss: 2.0, duration: TimeSpan.FromSeconds(1), samples: 16);
            using (ColmTelemetry.Source.StartActivity(ColmTelemetry.StepSpan)) { }
            pipeline.Dispose(); // flushes both signals
        }
        receiver.Stop();
        await serving;

        string Text(string path) => string.Join("\n", received.Where(r => r.Path == path).Select(r => Encoding.UTF8.GetString(r.Body)));
        Assert.All(received, r => Assert.Equal("application/x-protobuf", r.ContentType));
        string metrics = Text("/collector/v1/metrics");
        Assert.Contains("colm.train.samples", metrics);
        Assert.Contains(runId, metrics);
        Assert.True(metrics.Contains("dotnet.gc.collections") && metrics.Contains("process.memory.usage"), string.Join(" ", global::System.Text.RegularExpressions.Regex.Matches(metrics, "[a-z][a-z_.]{8,}").Select(m => m.Value).Distinct()));
        Assert.Contains("service.name", metrics);
        Assert.Contains("akka.tcp://colm@10.0.0.7:2551", metrics);
        Assert.Contains(ColmTelemetry.StepSpan, Text("/collector/v1/traces"));
    }

    [Fact]
    public void An_endpoint_that_is_not_an_http_url_is_refused_naming_the_setting()
    {
        var e = Assert.Throws<ArgumentException>(() =>
            TelemetryPipeline.Start(new TelemetryOptions("otlp", "", TimeSpan.FromSeconds(1), "collector:4317")));
        Assert.Contains("colm.telemetry.otlp-endpoint", e.Message);
    }
}
