using System.Buffers;
using System.Text.Json;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace CoLM.Telemetry;

/// <summary>
/// Writes each metric point of a collection to a <see cref="JsonLinesFile"/>, one line each:
/// {"kind":"metric","name","unit","time","tags":{...},"value"} for counters and gauges, and
/// "sum","count","min","max" instead of "value" for histograms. Tags are the meter's (run)
/// followed by the point's. Temporality is cumulative: counters and histograms are totals since start.
/// </summary>
internal sealed class JsonLinesMetricExporter(JsonLinesFile file) : BaseExporter<Metric>
{
    public override ExportResult Export(in Batch<Metric> batch)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            foreach (var metric in batch)
            {
                foreach (ref readonly var point in metric.GetMetricPoints())
                {
                    WritePoint(writer, metric, point);
                    writer.Flush();
                    writer.Reset();
                    buffer.Write("\n"u8);
                }
            }
        }
        try
        {
            return file.Append(buffer.WrittenSpan) ? ExportResult.Success : ExportResult.Failure;
        }
        catch (IOException)
        {
            return ExportResult.Failure;
        }
    }

    private static void WritePoint(Utf8JsonWriter writer, Metric metric, in MetricPoint point)
    {
        writer.WriteStartObject();
        writer.WriteString("kind", "metric");
        writer.WriteString("name", metric.Name);
        writer.WriteString("unit", metric.Unit);
        writer.WriteString("time", JsonLinesFile.FormatTime(point.EndTime));

        var tags = new List<KeyValuePair<string, object?>>();
        if (metric.MeterTags is { } meterTags)
            tags.AddRange(meterTags);
        foreach (var tag in point.Tags)
            tags.Add(tag);
        JsonLinesFile.WriteTags(writer, tags);

        switch (metric.MetricType)
        {
            case MetricType.LongSum:
            case MetricType.LongSumNonMonotonic:
                writer.WriteNumber("value", point.GetSumLong());
                break;
            case MetricType.DoubleSum:
            case MetricType.DoubleSumNonMonotonic:
                writer.WritePropertyName("value");
                JsonLinesFile.WriteNumber(writer, point.GetSumDouble());
                break;
            case MetricType.LongGauge:
                writer.WriteNumber("value", point.GetGaugeLastValueLong());
                break;
            case MetricType.DoubleGauge:
                writer.WritePropertyName("value");
                JsonLinesFile.WriteNumber(writer, point.GetGaugeLastValueDouble());
                break;
            case MetricType.Histogram:
            case MetricType.ExponentialHistogram:
                writer.WritePropertyName("sum");
                JsonLinesFile.WriteNumber(writer, point.GetHistogramSum());
                writer.WriteNumber("count", point.GetHistogramCount());
                if (point.TryGetHistogramMinMaxValues(out double min, out double max))
                {
                    writer.WritePropertyName("min");
                    JsonLinesFile.WriteNumber(writer, min);
                    writer.WritePropertyName("max");
                    JsonLinesFile.WriteNumber(writer, max);
                }
                break;
        }
        writer.WriteEndObject();
    }
}
