using System.Globalization;
using System.Text;
using System.Text.Json;
using CoLM.Data;
using CoLM.Selection;

namespace CoLM.Cluster.Runs;

/// <summary>
/// What the coordinator itself must restore to continue a run bit-identically, and the training
/// data it was written for (<paramref name="TrainExamples"/>, <paramref name="TrainPerSource"/>:
/// null in checkpoints written before they were recorded).
/// </summary>
public sealed record CoordinatorCheckpoint(
    long Step, long SamplerEpoch, int SamplerPosition, long NormalizerStep,
    IReadOnlyDictionary<string, SourceScore> Baseline, string Method,
    int? TrainExamples = null, IReadOnlyDictionary<string, int>? TrainPerSource = null);

public sealed record SourceScore(int Examples, double Accuracy, double Loss);

/// <summary>A complete checkpoint on disk.</summary>
public sealed record CheckpointPaths(string Directory, long Step)
{
    public string TrainerState => Path.Combine(Directory, "trainer-state.bin");
    public string Coordinator => Path.Combine(Directory, "coordinator.json");
    public string Normalizer => Path.Combine(Directory, "normalizer.bin");
    public string Config => Path.Combine(Directory, "config.conf");
    public string Adapter => Path.Combine(Directory, "adapter");
    public string Manifest => Path.Combine(Directory, CheckpointManifest.FileName);

    /// <summary>The folder's own name, step-N, for messages.</summary>
    public string Name => Path.GetFileName(Path.TrimEndingDirectorySeparator(Directory));
}

/// <summary>
/// Checkpoints are assembled in checkpoints/.step-N.partial and renamed to checkpoints/step-N
/// only when every file is written, hashed into manifest.json and flushed to disk, so a
/// directory named step-N is complete (and <see cref="CheckpointVerifier"/> can tell if it was damaged since).
/// </summary>
public sealed class CheckpointStore(RunDirectory run, int keep)
{
    public CheckpointPaths BeginPartial(long step)
    {
        var partial = PartialAt(run.CheckpointsPath, step);
        Prepare(partial);
        return partial;
    }

    /// <summary>Where the checkpoint of <paramref name="step"/> is assembled before it is sealed.</summary>
    public static CheckpointPaths PartialAt(string checkpointsPath, long step) =>
        new(Path.Combine(checkpointsPath, $".step-{step:D6}.partial"), step);

    /// <summary>Empties (or creates) a partial checkpoint folder: what an abandoned attempt left there is not trusted.</summary>
    public static void Prepare(CheckpointPaths partial)
    {
        if (Directory.Exists(partial.Directory)) Directory.Delete(partial.Directory, recursive: true);
        Directory.CreateDirectory(partial.Directory);
    }

    public CheckpointPaths Complete(CheckpointPaths partial, CoordinatorCheckpoint state, NormalizerState normalizer, string config)
    {
        WritePart(partial, state, normalizer, config);
        return Seal(partial);
    }

    /// <summary>The coordinator's part of a checkpoint, written into its partial folder (a background checkpoint writes it when the replica state is copied).</summary>
    public static void WritePart(CheckpointPaths partial, CoordinatorCheckpoint state, NormalizerState normalizer, string config)
    {
        File.WriteAllText(partial.Coordinator, JsonSerializer.Serialize(state));
        NormalizerFile.Write(partial.Normalizer, normalizer);
        File.WriteAllText(partial.Config, config);
    }

    /// <summary>Seals a partial folder whose every file is written: manifest, fsync, rename to step-N, prune.</summary>
    public CheckpointPaths Seal(CheckpointPaths partial)
    {
        // Describe flushes each file it hashes; the manifest goes last, then the folders' entries,
        // then the rename and the entry it changes: after a crash step-N is whole or absent.
        var manifest = CheckpointManifest.Describe(partial.Directory, partial.Step);
        DurableFiles.WriteAllBytes(partial.Manifest, Encoding.UTF8.GetBytes(manifest.ToJson()));
        foreach (var folder in Directory.EnumerateDirectories(partial.Directory, "*", SearchOption.AllDirectories))
            DurableFiles.SyncDirectory(folder);
        DurableFiles.SyncDirectory(partial.Directory);
        var final = Path.Combine(run.CheckpointsPath, $"step-{partial.Step:D6}");
        if (Directory.Exists(final)) Directory.Delete(final, recursive: true);
        Directory.Move(partial.Directory, final);
        DurableFiles.SyncDirectory(run.CheckpointsPath);
        Prune();
        return new CheckpointPaths(final, partial.Step);
    }

    /// <summary>The newest checkpoint folder, verified or not (the coordinator's own, just written).</summary>
    public static CheckpointPaths? Latest(RunDirectory run) => All(run).FirstOrDefault();

    /// <summary>Every checkpoint folder of the run, newest first.</summary>
    public static IEnumerable<CheckpointPaths> All(RunDirectory run) =>
        Directory.Exists(run.CheckpointsPath)
            ? Directory.EnumerateDirectories(run.CheckpointsPath, "step-*").Select(At).OfType<CheckpointPaths>().OrderByDescending(c => c.Step)
            : [];

    /// <summary>The checkpoint in a folder named step-N, or null for any other name.</summary>
    public static CheckpointPaths? At(string directory)
    {
        var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(directory));
        return name.StartsWith("step-", StringComparison.Ordinal)
               && long.TryParse(name.AsSpan("step-".Length), NumberStyles.None, CultureInfo.InvariantCulture, out var step)
            ? new CheckpointPaths(directory, step)
            : null;
    }

    /// <summary>
    /// Renames a damaged checkpoint to checkpoints/.step-N.damaged: kept for a look, never resumed
    /// from, and out of the way so the resumed run writes step-N afresh (the coordinator trusts
    /// the newest step-N it finds). Returns the new folder.
    /// </summary>
    public static string SetAside(CheckpointPaths damaged)
    {
        var parent = Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(damaged.Directory))!;
        var aside = Path.Combine(parent, $".{damaged.Name}.damaged");
        if (Directory.Exists(aside)) Directory.Delete(aside, recursive: true);
        Directory.Move(damaged.Directory, aside);
        DurableFiles.SyncDirectory(parent);
        return aside;
    }

    public static (CoordinatorCheckpoint State, NormalizerState Normalizer) Load(CheckpointPaths checkpoint)
    {
        foreach (var file in new[] { checkpoint.TrainerState, checkpoint.Coordinator, checkpoint.Normalizer })
            if (!File.Exists(file)) throw new RunDirectoryException(checkpoint.Directory, $"incomplete checkpoint: {Path.GetFileName(file)} missing");
        CoordinatorCheckpoint? state;
        try
        {
            state = JsonSerializer.Deserialize<CoordinatorCheckpoint>(File.ReadAllText(checkpoint.Coordinator));
        }
        catch (JsonException e)
        {
            throw new RunDirectoryException(checkpoint.Coordinator, $"corrupt coordinator state: {e.Message}");
        }
        if (state is null || state.Step != checkpoint.Step)
            throw new RunDirectoryException(checkpoint.Coordinator, "coordinator state does not match its checkpoint folder");
        if (state.Baseline is null || state.Method is null)
            throw new RunDirectoryException(checkpoint.Coordinator, "corrupt coordinator state: Baseline or Method missing");
        return (state, NormalizerFile.Read(checkpoint.Normalizer));
    }

    public static SamplerState Sampler(CoordinatorCheckpoint state) => new(state.SamplerEpoch, state.SamplerPosition);

    private void Prune()
    {
        var complete = Directory.EnumerateDirectories(run.CheckpointsPath, "step-*").Order(StringComparer.Ordinal).ToList();
        foreach (var old in complete.Take(Math.Max(0, complete.Count - keep)))
            Directory.Delete(old, recursive: true);
    }
}

/// <summary>The selector's private Adam history, in binary so floats round-trip exactly.</summary>
public static class NormalizerFile
{
    public static void Write(string path, NormalizerState state)
    {
        using var w = new BinaryWriter(File.Create(path));
        w.Write(state.Step);
        w.Write(state.M.Length);
        foreach (var x in state.M) w.Write(x);
        foreach (var x in state.V) w.Write(x);
    }

    public static NormalizerState Read(string path)
    {
        try
        {
            using var r = new BinaryReader(File.OpenRead(path));
            long step = r.ReadInt64();
            int n = r.ReadInt32();
            if (n < 0 || n > 1 << 28) throw new RunDirectoryException(path, $"corrupt normalizer state (length {n})");
            var m = new float[n];
            var v = new float[n];
            for (int i = 0; i < n; i++) m[i] = r.ReadSingle();
            for (int i = 0; i < n; i++) v[i] = r.ReadSingle();
            return new NormalizerState(m, v, step);
        }
        catch (EndOfStreamException)
        {
            throw new RunDirectoryException(path, "truncated normalizer state");
        }
    }
}
