using System.Diagnostics;
using System.Text.Json;
using Xunit;

namespace CoLM.Telemetry.Tests;

public sealed class TelemetryPipelineTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "colm-telemetry-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_directory))
            Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public void File_exporter_writes_spans_with_their_parent_and_metric_points_on_dispose()
    {
        string path = Path.Combine(_directory, "nested", "telemetry.jsonl");
        string runId = "run-" + Guid.NewGuid().ToString("N");
        var pipeline = TelemetryPipeline.Start(new TelemetryOptions("file", path, TimeSpan.FromMinutes(10)));
        using var instruments = new ColmInstruments(runId);

        string stepSpanId, trainSpanId, traceId;
        using (var step = ColmTelemetry.Source.StartActivity(ColmTelemetry.StepSpan))
        {
            Assert.NotNull(step);
            step.SetTag("step", 7L);
            using (var train = ColmTelemetry.Source.StartActivity(ColmTelemetry.TrainSpan))
            {
                Assert.NotNull(train);
                trainSpanId = train.SpanId.ToHexString();
            }
            stepSpanId = step.SpanId.ToHexString();
            traceId = step.TraceId.ToHexString();
        }
        instruments.OnPhase(ColmInstruments.PhaseTrain, TimeSpan.FromMilliseconds(250));
        instruments.OnStepCompleted(step: 7, loss: 2.5, duration: TimeSpan.FromSeconds(1), samples: 32);
        instruments.OnStepCompleted(step: 8, loss: 1.5, duration: TimeSpan.FromSeconds(3), samples: 32);
        instruments.OnSelected("train", 12);
        instruments.OnSelected("train", 4);
        instruments.OnDegenerateFeatures(3);
        instruments.OnEvaluated("valid", accuracy: 0.75, loss: 0.9);
        instruments.OnTrainerRestarted(rank: 1);

        pipeline.Dispose();

        var lines = File.ReadAllLines(path).Select(line => JsonDocument.Parse(line).RootElement).ToList();

        var spans = lines.Where(l => l.GetProperty("kind").GetString() == "span").ToList();
        var stepSpan = Assert.Single(spans, s => s.GetProperty("spanId").GetString() == stepSpanId);
        var trainSpan = Assert.Single(spans, s => s.GetProperty("spanId").GetString() == trainSpanId);
        Assert.Equal(ColmTelemetry.StepSpan, stepSpan.GetProperty("name").GetString());
        Assert.Equal(ColmTelemetry.TrainSpan, trainSpan.GetProperty("name").GetString());
        Assert.Equal(stepSpanId, trainSpan.GetProperty("parentSpanId").GetString());
        Assert.Equal(traceId, trainSpan.GetProperty("traceId").GetString());
        Assert.Equal(7L, stepSpan.GetProperty("tags").GetProperty("step").GetInt64());
        Assert.True(stepSpan.GetProperty("durationMs").GetDouble() >= trainSpan.GetProperty("durationMs").GetDouble());

        // Other tests may run instruments at the same time; only this run's points count.
        var metrics = lines
            .Where(l => l.GetProperty("kind").GetString() == "metric")
            .Where(l => l.GetProperty("tags").TryGetProperty("run", out var run) && run.GetString() == runId)
            .ToList();
        JsonElement Last(string name, string? tagKey = null, string? tagValue = null) => metrics.Last(m =>
            m.GetProperty("name").GetString() == name
            && (tagKey is null || m.GetProperty("tags").GetProperty(tagKey).ToString() == tagValue));

        var loss = Last("colm.train.loss");
        Assert.Equal("{nats}", loss.GetProperty("unit").GetString());
        Assert.Equal(2, loss.GetProperty("count").GetInt64());
        Assert.Equal(4.0, loss.GetProperty("sum").GetDouble(), 9);
        Assert.Equal(1.5, loss.GetProperty("min").GetDouble(), 9);
        Assert.Equal(2.5, loss.GetProperty("max").GetDouble(), 9);

        var stepDuration = Last("colm.step.duration");
        Assert.Equal("s", stepDuration.GetProperty("unit").GetString());
        Assert.Equal(4.0, stepDuration.GetProperty("sum").GetDouble(), 9);

        Assert.Equal(0.25, Last("colm.phase.duration", "phase", "train").GetProperty("sum").GetDouble(), 9);
        Assert.Equal(64, Last("colm.train.samples").GetProperty("value").GetInt64());
        Assert.Equal(16, Last("colm.selection.selected", "source", "train").GetProperty("value").GetInt64());
        Assert.Equal(3, Last("colm.selection.degenerate_features").GetProperty("value").GetInt64());
        Assert.Equal(0.75, Last("colm.eval.accuracy", "source", "valid").GetProperty("value").GetDouble(), 9);
        Assert.Equal(0.9, Last("colm.eval.loss", "source", "valid").GetProperty("value").GetDouble(), 9);
        Assert.Equal(8, Last("colm.train.step").GetProperty("value").GetInt64());
        Assert.Equal(1, Last("colm.trainer.restarts", "rank", "1").GetProperty("value").GetInt64());

        var peak = Last("colm.memory.peak");
        Assert.Equal("By", peak.GetProperty("unit").GetString());
        Assert.True(peak.GetProperty("value").GetInt64() > 0);
    }

    [Fact]
    public void Disposing_twice_is_harmless_and_later_spans_are_not_written()
    {
        string path = Path.Combine(_directory, "twice.jsonl");
        var pipeline = TelemetryPipeline.Start(new TelemetryOptions("file", path, TimeSpan.FromMinutes(10)));
        pipeline.Dispose();
        pipeline.Dispose();

        using (ColmTelemetry.Source.StartActivity(ColmTelemetry.CheckpointSpan)) { }

        Assert.DoesNotContain(File.ReadAllLines(path), line => line.Contains(ColmTelemetry.CheckpointSpan, StringComparison.Ordinal));
    }

    [Fact]
    public void None_exporter_starts_and_stops_without_output()
    {
        using var pipeline = TelemetryPipeline.Start(new TelemetryOptions("none", "", TimeSpan.FromSeconds(1)));
        Assert.NotNull(pipeline);
    }

    [Fact]
    public void Console_exporter_starts_and_stops()
    {
        using var pipeline = TelemetryPipeline.Start(new TelemetryOptions("console", "", TimeSpan.FromSeconds(10)));
        Assert.NotNull(pipeline);
    }

    [Fact]
    public void Unknown_exporter_is_rejected_naming_the_allowed_values()
    {
        var error = Assert.Throws<ArgumentException>(() =>
            TelemetryPipeline.Start(new TelemetryOptions("zipkin", "", TimeSpan.FromSeconds(1))));
        Assert.Contains("zipkin", error.Message, StringComparison.Ordinal);
        foreach (string allowed in new[] { "none", "console", "file", "prometheus", "otlp" })
            Assert.Contains(allowed, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("none,file")]
    [InlineData("file,")]
    [InlineData("file,zipkin")]
    public void Bad_exporter_lists_are_rejected(string exporter) =>
        Assert.Throws<ArgumentException>(() => TelemetryOptions.ParseExporters(exporter));

    [Fact]
    public void Exporter_lists_parse_in_order_without_repeats_and_split_into_process_wide_and_per_run_parts()
    {
        Assert.Equal(["file", "prometheus"], TelemetryOptions.ParseExporters("File, prometheus,file"));
        Assert.Empty(TelemetryOptions.ParseExporters("none"));
        Assert.Equal(("prometheus,otlp", "file,console"), TelemetryOptions.SplitPerProcess("file,prometheus,console,otlp"));
        // TensorBoard's event files are the run recorder's, in neither OpenTelemetry pipeline.
        Assert.Equal(("none", "file"), TelemetryOptions.SplitPerProcess("file,tensorboard"));
        Assert.Equal(("none", "file"), TelemetryOptions.SplitPerProcess("file"));
        Assert.Equal(("none", "none"), TelemetryOptions.SplitPerProcess("none"));
    }

    [Fact]
    public void File_exporter_without_a_path_is_rejected()
    {
        Assert.Throws<ArgumentException>(() =>
            TelemetryPipeline.Start(new TelemetryOptions("file", " ", TimeSpan.FromSeconds(1))));
    }

    [Fact]
    public void Non_positive_metric_interval_is_rejected()
    {
        Assert.Throws<ArgumentException>(() =>
            TelemetryPipeline.Start(new TelemetryOptions("file", Path.Combine(_directory, "x.jsonl"), TimeSpan.Zero)));
    }
}
