using System.Diagnostics;
using System.Globalization;

namespace CoLM.Telemetry;

/// <summary>
/// Resident memory of this process. On Linux it reads /proc/self/status (VmHWM is the peak
/// resident set, VmRSS the current one); elsewhere it falls back to <see cref="Process"/>.
/// </summary>
public static class PeakMemory
{
    private const string StatusPath = "/proc/self/status";
    private const string ClearRefsPath = "/proc/self/clear_refs";

    /// <summary>Peak resident set size in bytes (VmHWM), else <see cref="Process.PeakWorkingSet64"/>.</summary>
    public static long PeakBytes()
    {
        if (TryReadStatusKilobytes("VmHWM:", out long kb))
            return kb * 1024;
        using var process = Process.GetCurrentProcess();
        return process.PeakWorkingSet64;
    }

    /// <summary>Current resident set size in bytes (VmRSS), else <see cref="Process.WorkingSet64"/>.</summary>
    public static long CurrentBytes()
    {
        if (TryReadStatusKilobytes("VmRSS:", out long kb))
            return kb * 1024;
        using var process = Process.GetCurrentProcess();
        return process.WorkingSet64;
    }

    /// <summary>
    /// Resets the peak (VmHWM) to the current resident set by writing "5" to /proc/self/clear_refs,
    /// so a later <see cref="PeakBytes"/> measures only what happened since. False where the kernel
    /// or platform does not allow it; the peak is then unchanged.
    /// </summary>
    public static bool TryResetPeak()
    {
        if (!OperatingSystem.IsLinux())
            return false;
        try
        {
            File.WriteAllText(ClearRefsPath, "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            return false;
        }
    }

    // A status line looks like "VmHWM:\t  123456 kB".
    private static bool TryReadStatusKilobytes(string key, out long kilobytes)
    {
        kilobytes = 0;
        if (!OperatingSystem.IsLinux())
            return false;
        try
        {
            foreach (string line in File.ReadLines(StatusPath))
            {
                if (!line.StartsWith(key, StringComparison.Ordinal))
                    continue;
                string[] parts = line[key.Length..].Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                return parts.Length >= 1
                    && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out kilobytes);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return false;
    }
}
