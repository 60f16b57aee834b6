using CoLM.Cluster.Configuration;
using CoLM.Data;
using CoLM.Training;

namespace CoLM.Cluster.Runs;

/// <summary>
/// The one list of failures that are the user's to fix: their settings, data, model folder,
/// checkpoints or storage. Such a failure stops a run at once with exit 2 and the cause in one
/// line; retrying cannot help (a trainer restart would meet the same file again), so trainers
/// report it instead of being restarted, and the coordinator ends the run with it.
/// Everything else is ours (exit 1, "internal error" when it escapes to the command line).
/// </summary>
public static class BadInput
{
    // errno values, which .NET on Linux puts in IOException.HResult.
    private const int NoSpace = 28, ReadOnlyFileSystem = 30, QuotaExceeded = 122;

    /// <summary>The user-facing message when <paramref name="error"/> is bad input, else null.</summary>
    public static string? Describe(Exception error)
    {
        var e = FailurePolicy.Unwrap(error);
        return e switch
        {
            IOException io when Storage(io) is { } storage => storage,
            UnauthorizedAccessException => $"permission denied: {e.Message}",
            ConfigException or DataFormatException or RunDirectoryException or CheckpointMismatchException
                or Model.Peft.PeftAdapterException or Model.SafeTensors.SafeTensorsFormatException
                or InvalidDataException or NotSupportedException or FileNotFoundException or DirectoryNotFoundException
                or Telemetry.Http.HttpHostException => e.Message,
            _ => null,
        };
    }

    public static bool Is(Exception error) => Describe(error) is not null;

    /// <summary>A full, read-only or over-quota disk, named as such with the path the system gave.</summary>
    public static string? Storage(IOException e) => e.HResult switch
    {
        NoSpace => $"no space left on device (ENOSPC) writing {PathOf(e)}; free space there or point colm.run.root elsewhere, then --resume",
        ReadOnlyFileSystem => $"read-only file system (EROFS) writing {PathOf(e)}; colm.run.root must be on writable storage",
        QuotaExceeded => $"disk quota exceeded (EDQUOT) writing {PathOf(e)}; free space there, then --resume",
        _ => null,
    };

    /// <summary>.NET's messages for these errors end with the path in quotes: "No space left on device : '/x'".</summary>
    private static string PathOf(IOException e)
    {
        int colon = e.Message.LastIndexOf(" : '", StringComparison.Ordinal);
        return colon >= 0 ? e.Message[(colon + 3)..] : "(" + e.Message + ")";
    }

    public static bool IsStorageFull(Exception e) => e is IOException { HResult: NoSpace or QuotaExceeded };
}
