using System.Text.Json;
using System.Text.Json.Serialization;

namespace CoLM.Cluster.Runs;

/// <summary>
/// One run's folder:
/// <code>
/// RUN/config.conf          resolved HOCON of the run (what --resume reads back)
/// RUN/status.json          running | completed | stopped | failed, with the error if any
/// RUN/metrics.jsonl        one JSON object per step and per evaluation
/// RUN/telemetry.jsonl      OpenTelemetry spans and metrics (colm.telemetry.exporter = file)
/// RUN/checkpoints/step-N/  trainer-state.bin, coordinator.json, normalizer.bin, config.conf, adapter/, manifest.json
/// RUN/report.md            per-source accuracy before and after training (finished runs only)
/// RUN/adapter/             the final LoRA weights as a Hugging Face PEFT adapter (finished runs only)
/// </code>
/// </summary>
public sealed class RunDirectory
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = false,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
    };

    private readonly Lock _metricsLock = new();

    private RunDirectory(string path) => Path = System.IO.Path.GetFullPath(path);

    public string Path { get; }

    public string ConfigFile => System.IO.Path.Combine(Path, "config.conf");

    public string MetricsFile => System.IO.Path.Combine(Path, "metrics.jsonl");

    public string ReportFile => System.IO.Path.Combine(Path, "report.md");

    public string StatusFile => System.IO.Path.Combine(Path, "status.json");

    public string CheckpointsPath => System.IO.Path.Combine(Path, "checkpoints");

    /// <summary>Creates a new run folder; refuses one that already holds a run.</summary>
    public static RunDirectory CreateNew(string root, string name, string resolvedConfig)
    {
        if (name.Length == 0) name = DateTime.UtcNow.ToString("yyyyMMdd-HHmmss");
        var dir = new RunDirectory(System.IO.Path.Combine(root, name));
        if (Directory.Exists(dir.Path) && Directory.EnumerateFileSystemEntries(dir.Path).Any())
            throw new RunDirectoryException(dir.Path, "already holds a run; pick another colm.run.name or use --resume");
        try
        {
            Directory.CreateDirectory(dir.CheckpointsPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RunDirectoryException(dir.Path, "cannot create the run directory (colm.run.root = " + root + "): " +
                (e is IOException io && BadInput.Storage(io) is { } storage ? storage : e.Message));
        }
        dir.WriteAtomically(dir.ConfigFile, resolvedConfig);
        dir.WriteStatus("running", null, 0);
        return dir;
    }

    /// <summary>Opens an existing run for --resume.</summary>
    public static RunDirectory OpenExisting(string path)
    {
        var dir = new RunDirectory(path);
        if (!File.Exists(dir.ConfigFile))
            throw new RunDirectoryException(dir.Path, "is not a run directory (no config.conf)");
        return dir;
    }

    /// <summary>
    /// status.json must tell the truth even when the disk is full, which is exactly when a run
    /// fails for that reason: the atomic write needs a new file's blocks, so on ENOSPC the status
    /// is written over the old file's own bytes instead (a one-line file fits in the block it has).
    /// </summary>
    public void WriteStatus(string state, string? error, long step)
    {
        string json = JsonSerializer.Serialize(new RunStatus(state, step, TotalSteps > 0 ? TotalSteps : null, error, DateTime.UtcNow), Json) + "\n";
        try
        {
            WriteAtomically(StatusFile, json);
        }
        catch (IOException e) when (BadInput.IsStorageFull(e) && File.Exists(StatusFile))
        {
            File.Delete(StatusFile + ".partial");
            using var file = new FileStream(StatusFile, FileMode.Open, FileAccess.Write);
            file.Write(global::System.Text.Encoding.UTF8.GetBytes(json));
            file.SetLength(file.Position);
            file.Flush(flushToDisk: true);
        }
    }

    public void AppendMetrics(object record)
    {
        var line = JsonSerializer.Serialize(record, record.GetType(), Json) + "\n";
        lock (_metricsLock) File.AppendAllText(MetricsFile, line);
    }

    /// <summary>The highest step with a row in metrics.jsonl (0 when none); a torn last line is skipped.</summary>
    public long LastRecordedStep()
    {
        if (!File.Exists(MetricsFile)) return 0;
        long last = 0;
        foreach (var line in File.ReadLines(MetricsFile))
        {
            if (!line.StartsWith("{\"kind\":\"step\"", StringComparison.Ordinal)) continue;
            try
            {
                using var row = JsonDocument.Parse(line);
                last = Math.Max(last, row.RootElement.GetProperty("step").GetInt64());
            }
            catch (JsonException)
            {
            }
        }
        return last;
    }

    public void WriteReport(string markdown) => WriteAtomically(ReportFile, markdown);

    public string AdapterPath => System.IO.Path.Combine(Path, "adapter");

    /// <summary>Copies the final checkpoint's PEFT adapter to RUN/adapter, replacing an older one whole.</summary>
    public void PublishAdapter(string checkpointAdapter)
    {
        var partial = AdapterPath + ".partial";
        if (Directory.Exists(partial)) Directory.Delete(partial, recursive: true);
        Directory.CreateDirectory(partial);
        foreach (var file in Directory.GetFiles(checkpointAdapter))
            File.Copy(file, System.IO.Path.Combine(partial, System.IO.Path.GetFileName(file)));
        if (Directory.Exists(AdapterPath)) Directory.Delete(AdapterPath, recursive: true);
        Directory.Move(partial, AdapterPath);
    }

    /// <summary>Temp file + rename: a crash leaves the old file or the new one, never half of one.</summary>
    public void WriteAtomically(string path, string content)
    {
        var tmp = path + ".partial";
        File.WriteAllText(tmp, content);
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>The run's colm.train.steps, written into status.json (so a dashboard can tell how far along it is) once known.</summary>
    public long TotalSteps { get; set; }

    private sealed record RunStatus(string State, long Step, long? TotalSteps, string? Error, DateTime UpdatedUtc);
}

public sealed class RunDirectoryException(string path, string problem) : Exception($"{path}: {problem}")
{
    /// <summary>The file or folder at fault.</summary>
    public string Path { get; } = path;

    /// <summary>What is wrong with it, without the path.</summary>
    public string Problem { get; } = problem;
}
