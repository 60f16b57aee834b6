using System.Runtime.InteropServices;

namespace CoLM.Cluster.Runs;

/// <summary>
/// Writes that survive a power cut: a rename is only as durable as the data it names and the
/// folder entry it changes, so files are flushed to disk and their folders fsynced before and
/// after renaming.
/// </summary>
public static class DurableFiles
{
    // O_RDONLY is 0 everywhere; O_DIRECTORY differs between Linux architectures.
    private const int ReadOnly = 0;
    // EINVAL from fsync: this file system cannot sync a folder; its entries are as durable as it makes them.
    private const int InvalidArgument = 22;

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static extern int Fsync(int fd);

    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    private static extern int Close(int fd);

    private static int DirectoryFlag => RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x4000 : 0x10000;

    /// <summary>Creates or replaces <paramref name="path"/> with <paramref name="content"/>, on disk when this returns.</summary>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> content)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None);
        stream.Write(content);
        stream.Flush(flushToDisk: true);
    }

    /// <summary>
    /// Makes a folder's entries (files created, renamed or removed in it) durable. Only Linux can
    /// fsync a folder through a descriptor; elsewhere this does nothing.
    /// </summary>
    public static void SyncDirectory(string path)
    {
        if (!OperatingSystem.IsLinux()) return;
        int fd = Open(path, ReadOnly | DirectoryFlag);
        if (fd < 0) throw new IOException($"{path}: cannot open the folder to sync it (errno {Marshal.GetLastPInvokeError()})");
        try
        {
            if (Fsync(fd) != 0 && Marshal.GetLastPInvokeError() is var errno and not InvalidArgument)
                throw new IOException($"{path}: fsync of the folder failed (errno {errno})");
        }
        finally
        {
            Close(fd);
        }
    }
}
