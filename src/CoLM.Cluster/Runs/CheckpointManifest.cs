using System.Security.Cryptography;
using System.Text.Json;

namespace CoLM.Cluster.Runs;

/// <summary>One file of a checkpoint: its path relative to the checkpoint folder ('/'-separated), length and SHA-256 (lower-case hex).</summary>
public sealed record ManifestEntry(string Path, long Length, string Sha256);

/// <summary>
/// manifest.json: every file of a checkpoint folder, recursively, with its length and SHA-256.
/// It is written last, so a folder without one was not finished (or predates manifests).
/// </summary>
public sealed record CheckpointManifest(long Step, IReadOnlyList<ManifestEntry> Files)
{
    public const string FileName = "manifest.json";

    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    /// <summary>Hashes every file under <paramref name="directory"/> and flushes each to disk on the way.</summary>
    public static CheckpointManifest Describe(string directory, long step)
    {
        var files = System.IO.Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories)
            .Select(f => System.IO.Path.GetRelativePath(directory, f).Replace(System.IO.Path.DirectorySeparatorChar, '/'))
            .Where(f => f != FileName)
            .Order(StringComparer.Ordinal)
            .Select(f => HashAndSync(directory, f))
            .ToList();
        return new CheckpointManifest(step, files);
    }

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Reads manifest.json; null with <paramref name="problem"/> set when it does not parse or names a file outside its folder.</summary>
    public static CheckpointManifest? Read(string path, out string? problem)
    {
        CheckpointManifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<CheckpointManifest>(File.ReadAllText(path), Json);
        }
        catch (JsonException e)
        {
            problem = $"{FileName} does not parse: {e.Message}";
            return null;
        }
        if (manifest?.Files is null || manifest.Files.Any(f => f?.Path is null || f.Sha256 is null))
        {
            problem = $"{FileName} is missing its file list or an entry's path or SHA-256";
            return null;
        }
        // A manifest names files inside its own checkpoint, never elsewhere on disk.
        if (manifest.Files.FirstOrDefault(f => System.IO.Path.IsPathRooted(f.Path) || f.Path.Split('/').Contains("..")) is { } outside)
        {
            problem = $"{FileName} names {outside.Path}, outside its checkpoint folder";
            return null;
        }
        problem = null;
        return manifest;
    }

    /// <summary>Why the file at <paramref name="entry"/> does not match it, or null when it does.</summary>
    public static string? Check(string directory, ManifestEntry entry)
    {
        var path = System.IO.Path.Combine(directory, entry.Path);
        if (!File.Exists(path)) return $"{entry.Path}: missing (its manifest lists it)";
        long length = new FileInfo(path).Length;
        if (length < entry.Length) return $"{entry.Path}: truncated: {length} of {entry.Length} bytes";
        if (length > entry.Length) return $"{entry.Path}: {length} bytes, its manifest says {entry.Length}";
        using var stream = File.OpenRead(path);
        if (Hex(SHA256.HashData(stream)) != entry.Sha256) return $"{entry.Path}: SHA-256 does not match its manifest (file changed or damaged)";
        return null;
    }

    private static ManifestEntry HashAndSync(string directory, string relative)
    {
        // One pass per file: the stream that hashes it is the one that flushes it.
        using var stream = new FileStream(System.IO.Path.Combine(directory, relative), FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
        var hash = SHA256.HashData(stream);
        stream.Flush(flushToDisk: true);
        return new ManifestEntry(relative, stream.Length, Hex(hash));
    }

    private static string Hex(byte[] hash) => Convert.ToHexStringLower(hash);
}
