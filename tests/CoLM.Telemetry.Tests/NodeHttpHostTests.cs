using System.Net;
using System.Net.Sockets;
using CoLM.Telemetry.Dashboard;
using CoLM.Telemetry.Http;
using Xunit;

namespace CoLM.Telemetry.Tests;

/// <summary>The process's HTTP host on real Kestrel, asked over real HTTP.</summary>
public sealed class NodeHttpHostTests : IDisposable
{
    private static readonly HttpClient Client = new() { Timeout = TimeSpan.FromSeconds(30) };
    private readonly string _directory = Directory.CreateTempSubdirectory("colm-http-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task Metrics_are_served_in_the_prometheus_text_format_by_opentelemetrys_exporter()
    {
        int port = FreePort.Next();
        string runId = "run-" + Guid.NewGuid().ToString("N");
        using var pipeline = TelemetryPipeline.Start(new TelemetryOptions("prometheus", "", TimeSpan.FromSeconds(1)));
        await using var host = await NodeHttpHost.StartAsync(new HttpHostOptions("127.0.0.1", port), pipeline.Meters, () => true, new RunCatalog());
        using var instruments = new ColmInstruments(runId);
        Assert.Equal($"http://127.0.0.1:{port}/", host.Url);

        instruments.OnStepCompleted(step: 7, loss: 2.5, duration: TimeSpan.FromSeconds(1), samples: 32);
        instruments.OnStepCompleted(step: 8, loss: 1.5, duration: TimeSpan.FromSeconds(3), samples: 32);
        instruments.OnSelected("arith.add", 12);
        instruments.OnEvaluated("arith.add", accuracy: 0.75, loss: 0.9);

        using var response = await Client.GetAsync($"http://127.0.0.1:{port}/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        string body = await response.Content.ReadAsStringAsync();
        var samples = body.Split('\n').Where(l => l.Length > 0 && !l.StartsWith('#')).ToArray();
        string run = $"run=\"{runId}\"";
        Assert.Contains("# TYPE colm_train_samples_total counter", body);
        Assert.Contains("# TYPE colm_train_loss histogram", body);
        AssertSample(samples, "colm_train_samples_total", run, "64");
        AssertSample(samples, "colm_train_loss_sum", run, "4");
        AssertSample(samples, "colm_train_loss_count", run, "2");
        AssertSample(samples, "colm_step_duration_seconds_sum", run, "4");
        AssertSample(samples, "colm_selection_selected_total", $"{run},source=\"arith.add\"", "12");
        AssertSample(samples, "colm_eval_accuracy", $"{run},source=\"arith.add\"", "0.75");
        AssertSample(samples, "colm_train_step", run, "8");
        // The last step's loss as a gauge beside the histogram (whose sum / count is the mean since step 0).
        AssertSample(samples, "colm_train_loss_latest", run, "1.5");
    }

    /// <summary>A sample line of <paramref name="name"/> whose labels include <paramref name="labels"/>, with this value (a timestamp may follow).</summary>
    private static void AssertSample(string[] samples, string name, string labels, string value) =>
        Assert.True(samples.Any(l => l.StartsWith(name + "{", StringComparison.Ordinal) && l.Contains(labels, StringComparison.Ordinal)
                                     && l[(l.IndexOf('}') + 1)..].Trim().Split(' ')[0] == value),
            $"no {name}{{..{labels}..}} {value} in:\n{string.Join("\n", samples)}");

    [Fact]
    public async Task Health_readiness_and_a_missing_exporter_answer_as_probes_and_people_expect()
    {
        int port = FreePort.Next();
        bool ready = false;
        await using var host = await NodeHttpHost.StartAsync(new HttpHostOptions("0.0.0.0", port), meters: null, () => ready, new RunCatalog());

        Assert.Equal(HttpStatusCode.OK, (await Client.GetAsync($"http://127.0.0.1:{port}/healthz")).StatusCode);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await Client.GetAsync($"http://127.0.0.1:{port}/readyz")).StatusCode);
        ready = true;
        // 0.0.0.0 answers whatever host name the prober used.
        var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{port}/readyz");
        request.Headers.Host = $"colm-0.colm:{port}";
        Assert.Equal(HttpStatusCode.OK, (await Client.SendAsync(request)).StatusCode);
        using var metrics = await Client.GetAsync($"http://127.0.0.1:{port}/metrics");
        Assert.Equal(HttpStatusCode.NotFound, metrics.StatusCode);
        Assert.Contains("colm.telemetry.exporter", await metrics.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_port_in_use_fails_the_start_naming_the_address_and_the_setting()
    {
        using var blocker = new TcpListener(IPAddress.Loopback, 0);
        blocker.Start();
        int port = ((IPEndPoint)blocker.LocalEndpoint).Port;
        var error = await Assert.ThrowsAsync<HttpHostException>(() =>
            NodeHttpHost.StartAsync(new HttpHostOptions("127.0.0.1", port), null, () => true, new RunCatalog()));
        Assert.Contains($"127.0.0.1:{port}", error.Message, StringComparison.Ordinal);
        Assert.Contains("colm.telemetry.http-port", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_dashboard_page_and_its_scripts_come_from_this_host_only()
    {
        int port = FreePort.Next();
        await using var host = await NodeHttpHost.StartAsync(new HttpHostOptions("127.0.0.1", port), null, () => true, new RunCatalog());

        string page = await Client.GetStringAsync($"http://127.0.0.1:{port}/");
        Assert.Contains("<script src=\"uplot.js\"></script>", page);
        Assert.DoesNotContain("http://", page.Replace($"http://127.0.0.1:{port}", ""));
        Assert.DoesNotContain("https://", page);
        string uplot = await Client.GetStringAsync($"http://127.0.0.1:{port}/uplot.js");
        Assert.Contains("uPlot", uplot);
        Assert.Contains("EventSource", await Client.GetStringAsync($"http://127.0.0.1:{port}/dashboard.js"));
    }

    [Fact]
    public async Task A_metrics_file_larger_than_one_piece_arrives_whole_and_in_order()
    {
        // About 9 MiB: more than two of the feed's 4 MiB pieces, with lines cut at piece boundaries.
        var padding = new string('x', 300);
        File.WriteAllLines(Path.Combine(_directory, "metrics.jsonl"),
            Enumerable.Range(1, 30_000).Select(i => $"{{\"kind\":\"step\",\"step\":{i},\"pad\":\"{padding}\"}}"));
        var runs = new RunCatalog();
        runs.Add(new DashboardRun("big", _directory));
        int port = FreePort.Next();
        await using var host = await NodeHttpHost.StartAsync(new HttpHostOptions("127.0.0.1", port), null, () => true, runs);

        using var stream = await Client.GetStreamAsync($"http://127.0.0.1:{port}/api/runs/0/events");
        using var reader = new StreamReader(stream);
        int expected = 1;
        while (expected <= 30_000)
        {
            var line = await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(20)) ?? throw new EndOfStreamException();
            if (!line.StartsWith("data: {\"kind\"", StringComparison.Ordinal)) continue;
            Assert.StartsWith($"data: {{\"kind\":\"step\",\"step\":{expected},", line);
            expected++;
        }
    }

    [Fact]
    public async Task The_event_stream_sends_every_row_then_rows_appended_later_and_status_changes()
    {
        string metrics = Path.Combine(_directory, "metrics.jsonl");
        File.WriteAllText(metrics, "{\"kind\":\"step\",\"step\":1}\n{\"kind\":\"step\",\"step\":2}\n{\"kind\":\"st");
        File.WriteAllText(Path.Combine(_directory, "status.json"), "{\"state\":\"running\",\"step\":2}\n");
        var runs = new RunCatalog();
        runs.Add(new DashboardRun("demo", _directory));
        int port = FreePort.Next();
        await using var host = await NodeHttpHost.StartAsync(new HttpHostOptions("127.0.0.1", port), null, () => true, runs);

        Assert.Contains("\"name\":\"demo\"", await Client.GetStringAsync($"http://127.0.0.1:{port}/api/runs"));
        using var stream = await Client.GetStreamAsync($"http://127.0.0.1:{port}/api/runs/0/events");
        using var reader = new StreamReader(stream);
        async Task<string> NextData()
        {
            while (true)
            {
                var line = await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10));
                if (line is null) throw new EndOfStreamException();
                if (line.StartsWith("data: ", StringComparison.Ordinal)) return line[6..];
            }
        }
        Assert.Contains("\"name\":\"demo\"", await NextData());
        Assert.Equal("{\"kind\":\"step\",\"step\":1}", await NextData());
        Assert.Equal("{\"kind\":\"step\",\"step\":2}", await NextData());
        Assert.Equal("{\"state\":\"running\",\"step\":2}", await NextData());

        // The torn line completes; a status change follows.
        File.AppendAllText(metrics, "ep\",\"step\":3}\n");
        Assert.Equal("{\"kind\":\"step\",\"step\":3}", await NextData());
        File.WriteAllText(Path.Combine(_directory, "status.json"), "{\"state\":\"completed\",\"step\":3}\n");
        Assert.Equal("{\"state\":\"completed\",\"step\":3}", await NextData());

        using var missing = await Client.GetAsync($"http://127.0.0.1:{port}/api/runs/5/events");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }
}
