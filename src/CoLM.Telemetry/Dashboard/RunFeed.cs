using System.Text;
using Microsoft.AspNetCore.Http;

namespace CoLM.Telemetry.Dashboard;

/// <summary>
/// A run directory as server-sent events: every complete line of metrics.jsonl as a "row" event
/// (the line as written), and status.json as a "status" event whenever it changes. It follows the
/// files by polling every <see cref="Poll"/> (a run directory is often on shared storage, where
/// change notifications do not arrive), so the page is at most that far behind the run; a comment
/// line every 15 s keeps proxies from closing an idle stream. Reads never lock the files the run writes.
/// </summary>
public static class RunFeed
{
    public static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(250);
    // A long run's file is sent in pieces of this size, one after the other without waiting, so a
    // page opened late never makes the host hold the whole file in memory at once.
    private const int MaxChunkBytes = 4 << 20;
    private static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(15);

    public static async Task StreamAsync(DashboardRun run, HttpResponse response, CancellationToken stop)
    {
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        await response.WriteAsync($"event: run\ndata: {System.Text.Json.JsonSerializer.Serialize(new { name = run.Name, directory = run.Directory })}\n\n", stop);
        string metrics = Path.Combine(run.Directory, "metrics.jsonl");
        string statusFile = Path.Combine(run.Directory, "status.json");
        long offset = 0;
        using var partial = new MemoryStream();
        string? lastStatus = null;
        var quiet = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            while (!stop.IsCancellationRequested)
            {
                var events = new StringBuilder();
                (offset, bool more) = ReadNewLines(metrics, offset, partial, line => events.Append("event: row\ndata: ").Append(line).Append("\n\n"));
                if (ReadAll(statusFile) is { } status && status != lastStatus)
                {
                    lastStatus = status;
                    events.Append("event: status\ndata: ").Append(status.ReplaceLineEndings(" ")).Append("\n\n");
                }
                if (events.Length == 0 && quiet.Elapsed > KeepAlive) events.Append(": keep-alive\n\n");
                if (events.Length > 0)
                {
                    await response.WriteAsync(events.ToString(), stop);
                    await response.Body.FlushAsync(stop);
                    quiet.Restart();
                }
                if (!more) await Task.Delay(Poll, stop);
            }
        }
        catch (OperationCanceledException)
        {
            // The page went away.
        }
    }

    /// <summary>
    /// Reads what was appended after <paramref name="offset"/>; complete lines go to
    /// <paramref name="emit"/>, a trailing partial line (bytes, so a character cut in two is
    /// never decoded in halves) waits in <paramref name="pending"/> for the next read.
    /// </summary>
    private static (long Offset, bool More) ReadNewLines(string path, long offset, MemoryStream pending, Action<string> emit)
    {
        if (!File.Exists(path)) return (offset, false);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        if (stream.Length < offset)
        {
            // Rewritten from the start: follow the new file.
            offset = 0;
            pending.SetLength(0);
        }
        stream.Seek(offset, SeekOrigin.Begin);
        var chunk = new byte[(int)Math.Min(MaxChunkBytes, stream.Length - offset)];
        stream.ReadExactly(chunk);
        pending.Write(chunk);
        offset += chunk.Length;
        bool more = offset < stream.Length;
        var bytes = pending.GetBuffer().AsSpan(0, (int)pending.Length);
        int end = bytes.LastIndexOf((byte)'\n');
        if (end < 0) return (offset, more);
        foreach (var line in Encoding.UTF8.GetString(bytes[..end]).Split('\n'))
            if (line.Trim().Length > 0) emit(line.TrimEnd('\r'));
        var rest = bytes[(end + 1)..].ToArray();
        pending.SetLength(0);
        pending.Write(rest);
        return (offset, more);
    }

    private static string? ReadAll(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd().Trim();
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or IOException)
        {
            return null;
        }
    }
}
