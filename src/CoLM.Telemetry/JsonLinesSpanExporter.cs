using System.Buffers;
using System.Diagnostics;
using System.Text.Json;
using OpenTelemetry;

namespace CoLM.Telemetry;

/// <summary>
/// Writes finished spans to a <see cref="JsonLinesFile"/>, one line each:
/// {"kind":"span","name","traceId","spanId","parentSpanId","start","durationMs","status"?,"tags":{...}}.
/// parentSpanId is null for a root span.
/// </summary>
internal sealed class JsonLinesSpanExporter(JsonLinesFile file) : BaseExporter<Activity>
{
    public override ExportResult Export(in Batch<Activity> batch)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            foreach (var activity in batch)
            {
                WriteSpan(writer, activity);
                writer.Flush();
                writer.Reset();
                buffer.Write("\n"u8);
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

    private static void WriteSpan(Utf8JsonWriter writer, Activity activity)
    {
        writer.WriteStartObject();
        writer.WriteString("kind", "span");
        writer.WriteString("name", activity.DisplayName);
        writer.WriteString("traceId", activity.TraceId.ToHexString());
        writer.WriteString("spanId", activity.SpanId.ToHexString());
        if (activity.ParentSpanId == default)
            writer.WriteNull("parentSpanId");
        else
            writer.WriteString("parentSpanId", activity.ParentSpanId.ToHexString());
        writer.WriteString("start", JsonLinesFile.FormatTime(new DateTimeOffset(activity.StartTimeUtc, TimeSpan.Zero)));
        writer.WritePropertyName("durationMs");
        JsonLinesFile.WriteNumber(writer, activity.Duration.TotalMilliseconds);
        if (activity.Status != ActivityStatusCode.Unset)
        {
            writer.WriteString("status", activity.Status == ActivityStatusCode.Error ? "error" : "ok");
            if (!string.IsNullOrEmpty(activity.StatusDescription))
                writer.WriteString("statusDescription", activity.StatusDescription);
        }
        JsonLinesFile.WriteTags(writer, activity.TagObjects);
        writer.WriteEndObject();
    }
}
