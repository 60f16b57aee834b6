namespace CoLM.Cluster.Runs;

/// <summary>
/// Whether a checkpoint can be resumed from: <paramref name="Problem"/> is why not (null when it
/// can); <paramref name="Note"/> qualifies a usable one (it has no manifest to check it against).
/// </summary>
public sealed record CheckpointVerdict(string? Problem, string? Note = null)
{
    public bool Usable => Problem is null;
}

/// <summary>A checkpoint passed over on resume, and why.</summary>
public sealed record SkippedCheckpoint(CheckpointPaths Checkpoint, string Reason)
{
    public string Line => $"skipped checkpoint {Checkpoint.Name}: {Reason}";
}

/// <summary>The newest checkpoint that verifies (null when none does), the newer ones skipped on the way, and the chosen one's note if any.</summary>
public sealed record CheckpointChoice(CheckpointPaths? Chosen, IReadOnlyList<SkippedCheckpoint> Skipped, string? Note);

/// <summary>
/// Checks a checkpoint against its manifest before anything is loaded from it, so a damaged
/// file is a message and a fallback to an older checkpoint, not a resumed run on bad state.
/// </summary>
public static class CheckpointVerifier
{
    public const string NoManifest = "has no manifest (written by an older colm): not verified";

    /// <summary>
    /// Every file the manifest lists exists with its length and SHA-256, the files a resume needs
    /// are among them, and the coordinator's files parse. A folder without manifest.json (an
    /// older colm) is usable with <see cref="NoManifest"/> when its files are present and parse.
    /// </summary>
    public static CheckpointVerdict Verify(CheckpointPaths checkpoint)
    {
        if (!Directory.Exists(checkpoint.Directory)) return new("the folder does not exist");
        try
        {
            bool hasManifest = File.Exists(checkpoint.Manifest);
            if (hasManifest && ManifestProblem(checkpoint) is { } problem) return new(problem);
            CheckpointStore.Load(checkpoint);
            return new(null, hasManifest ? null : NoManifest);
        }
        catch (RunDirectoryException e)
        {
            return new(Relative(checkpoint, e.Path) + e.Problem);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new($"cannot be read: {e.Message}");
        }
    }

    /// <summary>Checkpoints newest first; the first that verifies is chosen, each newer one is skipped with its reason.</summary>
    public static CheckpointChoice LatestVerified(RunDirectory run)
    {
        var skipped = new List<SkippedCheckpoint>();
        foreach (var checkpoint in CheckpointStore.All(run))
        {
            var verdict = Verify(checkpoint);
            if (verdict.Usable) return new CheckpointChoice(checkpoint, skipped, verdict.Note);
            skipped.Add(new SkippedCheckpoint(checkpoint, verdict.Problem!));
        }
        return new CheckpointChoice(null, skipped, null);
    }

    private static string? ManifestProblem(CheckpointPaths checkpoint)
    {
        var manifest = CheckpointManifest.Read(checkpoint.Manifest, out var problem);
        if (manifest is null) return problem;
        if (manifest.Step != checkpoint.Step)
            return $"{CheckpointManifest.FileName} is for step {manifest.Step}, the folder for step {checkpoint.Step}";
        foreach (var required in new[] { checkpoint.TrainerState, checkpoint.Coordinator, checkpoint.Normalizer }.Select(Path.GetFileName))
            if (!manifest.Files.Any(f => f.Path == required))
                return $"{CheckpointManifest.FileName} does not list {required}";
        foreach (var entry in manifest.Files)
            if (CheckpointManifest.Check(checkpoint.Directory, entry) is { } mismatch)
                return mismatch;
        return null;
    }

    /// <summary>"coordinator.json: " for a file of the checkpoint; nothing for the folder itself.</summary>
    private static string Relative(CheckpointPaths checkpoint, string path)
    {
        var relative = Path.GetRelativePath(checkpoint.Directory, path);
        return relative == "." ? "" : relative.Replace(Path.DirectorySeparatorChar, '/') + ": ";
    }
}
