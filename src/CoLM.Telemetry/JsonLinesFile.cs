using System.Globalization;
using System.Text.Json;

namespace CoLM.Telemetry;

/// <summary>
/// The output of the "file" exporter: one JSON object per line, appended. The span and metric
/// exporters export from different threads, so each export is written whole under one lock and
/// flushed before the export returns.
/// </summary>
internal sealed class JsonLinesFile : IDisposable
{
    private readonly object _gate = new();
    private readonly FileStream _stream;
    private bool _disposed;

    public JsonLinesFile(string path)
    {
        string fullPath = Path.GetFullPath(path);
        string? directory = Path.GetDirectoryName(fullPath);
        if (!string.IsNullOrEmpty(directory))
            Directory.CreateDirectory(directory);
        _stream = new FileStream(fullPath, FileMode.Append, FileAccess.Write, FileShare.Read);
    }

    /// <summary>Appends <paramref name="lines"/> (already newline-terminated JSON) and flushes. False once disposed.</summary>
    public bool Append(ReadOnlySpan<byte> lines)
    {
        lock (_gate)
        {
            if (_disposed)
                return false;
            _stream.Write(lines);
            _stream.Flush();
            return true;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
                return;
            _disposed = true;
            _stream.Dispose();
        }
    }

    /// <summary>Writes a tag value as the nearest JSON value: numbers, booleans, strings; other types as their string form.</summary>
    public static void WriteValue(Utf8JsonWriter writer, object? value)
    {
        switch (value)
        {
            case null: writer.WriteNullValue(); break;
            case string s: writer.WriteStringValue(s); break;
            case bool b: writer.WriteBooleanValue(b); break;
            case int i: writer.WriteNumberValue(i); break;
            case long l: writer.WriteNumberValue(l); break;
            case short s16: writer.WriteNumberValue(s16); break;
            case byte u8: writer.WriteNumberValue(u8); break;
            case uint u32: writer.WriteNumberValue(u32); break;
            case ulong u64: writer.WriteNumberValue(u64); break;
            case double d: WriteNumber(writer, d); break;
            case float f: WriteNumber(writer, f); break;
            case IFormattable formattable: writer.WriteStringValue(formattable.ToString(null, CultureInfo.InvariantCulture)); break;
            default: writer.WriteStringValue(value.ToString()); break;
        }
    }

    /// <summary>JSON has no NaN or infinity; those are written as the strings "NaN", "Infinity", "-Infinity".</summary>
    public static void WriteNumber(Utf8JsonWriter writer, double value)
    {
        if (double.IsFinite(value))
            writer.WriteNumberValue(value);
        else
            writer.WriteStringValue(value.ToString(CultureInfo.InvariantCulture));
    }

    public static void WriteTags(Utf8JsonWriter writer, IEnumerable<KeyValuePair<string, object?>> tags)
    {
        writer.WriteStartObject("tags");
        foreach (var (key, value) in tags)
        {
            writer.WritePropertyName(key);
            WriteValue(writer, value);
        }
        writer.WriteEndObject();
    }

    public static string FormatTime(DateTimeOffset time) => time.UtcDateTime.ToString("O", CultureInfo.InvariantCulture);
}
