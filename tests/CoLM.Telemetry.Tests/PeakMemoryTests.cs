using System.Runtime.InteropServices;
using Xunit;

namespace CoLM.Telemetry.Tests;

public sealed class PeakMemoryTests
{
    private const long OneMegabyte = 1024 * 1024;

    [Fact]
    public void Peak_and_current_are_positive_and_peak_is_at_least_current()
    {
        long current = PeakMemory.CurrentBytes();
        long peak = PeakMemory.PeakBytes();
        Assert.True(current > 0);
        Assert.True(peak > 0);
        Assert.True(peak >= current - 16 * OneMegabyte, $"peak {peak} < current {current}");
    }

    [Fact]
    public void Resetting_the_peak_forgets_a_freed_allocation_on_linux()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.False(PeakMemory.TryResetPeak());
            return;
        }

        // Native memory rather than a managed array: glibc serves an allocation this large with
        // mmap and returns it to the kernel on free, so the resident set really drops afterwards
        // (the GC may keep freed managed regions committed).
        const long size = 200 * OneMegabyte;
        IntPtr block = Marshal.AllocHGlobal((nint)size);
        for (long offset = 0; offset < size; offset += 4096)
            Marshal.WriteByte(block, (int)offset, 1); // touch every page so it becomes resident
        long peakWithBlock = PeakMemory.PeakBytes();
        Marshal.FreeHGlobal(block);

        Assert.True(PeakMemory.TryResetPeak());
        long peakAfterReset = PeakMemory.PeakBytes();

        Assert.True(peakAfterReset <= peakWithBlock);
        Assert.True(peakAfterReset < peakWithBlock - size / 2,
            $"peak after reset {peakAfterReset / OneMegabyte} MB, with the block {peakWithBlock / OneMegabyte} MB");
    }
}
