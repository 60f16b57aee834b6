using System.Runtime.InteropServices;

namespace CoLM.Cli;

/// <summary>Hands heap memory freed by earlier work back to the OS, so a following peak-memory window starts clean.</summary>
internal static class NativeHeap
{
    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);

    public static void Trim()
    {
        if (OperatingSystem.IsLinux()) MallocTrim(0);
    }
}
