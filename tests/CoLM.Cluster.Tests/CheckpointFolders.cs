using CoLM.Cluster.Runs;
using CoLM.Selection;

namespace CoLM.Cluster.Tests;

/// <summary>A run folder in a temporary directory, with checkpoints written the way the coordinator writes them.</summary>
public sealed class CheckpointFolders : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("colm-checkpoints-").FullName;

    public CheckpointFolders() => Run = RunDirectory.CreateNew(_root, "run", "colm {}\n");

    public RunDirectory Run { get; }

    public static readonly IReadOnlyDictionary<string, int> PerSource = new Dictionary<string, int> { ["a"] = 250, ["b"] = 150 };

    /// <summary>A checkpoint at <paramref name="step"/>: trainer state and adapter as rank 0 writes them, then the coordinator's files.</summary>
    public CheckpointPaths Write(long step, int keep = 5)
    {
        var store = new CheckpointStore(Run, keep);
        var partial = store.BeginPartial(step);
        File.WriteAllBytes(partial.TrainerState, [.. Enumerable.Range(0, 4096).Select(i => (byte)(i * 7 + step))]);
        Directory.CreateDirectory(partial.Adapter);
        File.WriteAllText(Path.Combine(partial.Adapter, "adapter_config.json"), "{\"r\": 4}");
        var state = new CoordinatorCheckpoint(step, 0, (int)step * 8, step, new Dictionary<string, SourceScore>(), "Colm", 400, PerSource);
        return store.Complete(partial, state, new NormalizerState([1f, 2f], [3f, 4f], step), "colm { train { steps = 10 } }\n");
    }

    public static void FlipByte(string file, int at = 100)
    {
        var bytes = File.ReadAllBytes(file);
        bytes[at % bytes.Length] ^= 0x40;
        File.WriteAllBytes(file, bytes);
    }

    public static void Truncate(string file, int keep)
    {
        var bytes = File.ReadAllBytes(file);
        File.WriteAllBytes(file, bytes[..keep]);
    }

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }
}
