using System.Diagnostics;
using System.Runtime.InteropServices;

namespace CoLM.System.Tests;

/// <summary>
/// Real storage faults from the kernel: a run root on a small tmpfs that fills up (ENOSPC), and a
/// bind mount made read-only (EROFS). Mounting needs root, as CI and this project's machines run;
/// elsewhere these tests are skipped, saying why.
/// </summary>
public sealed class RequiresMountFactAttribute : FactAttribute
{
    public RequiresMountFactAttribute()
    {
        if (!Mounts.Available) Skip = "needs root and mount(8) to make a small tmpfs and a read-only bind mount";
    }
}

internal sealed class Mounts : IDisposable
{
    private readonly List<string> _mounted = new();

    [DllImport("libc")]
    private static extern uint geteuid();

    public static bool Available { get; } = OperatingSystem.IsLinux() && geteuid() == 0 && Probe();

    private static bool Probe()
    {
        var dir = Directory.CreateTempSubdirectory("colm-mount-probe-").FullName;
        try
        {
            if (Run("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir) != 0) return false;
            Run("umount", dir);
            return true;
        }
        finally
        {
            Directory.Delete(dir);
        }
    }

    public void Tmpfs(string dir, string size) => Must("mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", dir);

    public void Bind(string source, string target, bool readOnly) =>
        Must("mount", readOnly ? ["--bind", "-o", "ro", source, target] : ["--bind", source, target]);

    /// <summary>
    /// Turns an existing bind mount read-only while a run writes under it. The kernel refuses
    /// (EBUSY) while a write is in flight on the mount, so it is tried again for up to 10 s.
    /// </summary>
    public static void RemountReadOnly(string target)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (Run("mount", "-o", "remount,bind,ro", target) != 0)
        {
            if (DateTime.UtcNow > deadline) throw new InvalidOperationException("remount read-only failed for 10 s: " + target);
            Thread.Sleep(20);
        }
    }

    private void Must(string program, params string[] args)
    {
        if (Run(program, args) != 0) throw new InvalidOperationException($"{program} {string.Join(' ', args)} failed");
        _mounted.Add(args[^1]);
    }

    private static int Run(string program, params string[] args)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var p = Process.Start(start)!;
        p.WaitForExit();
        return p.ExitCode;
    }

    public void Dispose()
    {
        for (int i = _mounted.Count - 1; i >= 0; i--) Run("umount", "-l", _mounted[i]);
    }
}

public sealed class StorageFaultTests : IDisposable
{
    private readonly TinyRun _tiny = new();
    private readonly Mounts _mounts = new();

    public void Dispose()
    {
        _mounts.Dispose();
        _tiny.Dispose();
    }

    [RequiresMountFact]
    public async Task A_disk_that_fills_mid_run_is_named_within_seconds_with_exit_2_and_status_json_says_failed()
    {
        var root = Path.Combine(_tiny.Root, "small-disk");
        Directory.CreateDirectory(root);
        _mounts.Tmpfs(root, "8m");
        var run = Path.Combine(root, "full");
        var train = Train(root, "full", "colm.train.steps=5000", "colm.train.checkpoint-every=5");
        await TinyRun.UntilMetricsShow(run, "checkpoint", train);

        var clock = Stopwatch.StartNew();
        FillUp(Path.Combine(root, "filler.bin"));
        var outcome = await train;

        Assert.True(outcome.ExitCode == 2, $"exit {outcome.ExitCode}\n{outcome.Stderr}");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"took {clock.Elapsed.TotalSeconds:0} s to notice");
        Assert.Contains("no space left on device (ENOSPC)", outcome.Stderr);
        Assert.DoesNotContain("   at ", outcome.Stderr);
        Assert.DoesNotContain("internal error", outcome.Stderr);
        var status = File.ReadAllText(Path.Combine(run, "status.json"));
        Assert.Contains("\"failed\"", status);
        Assert.Contains("ENOSPC", status);
    }

    [RequiresMountFact]
    public async Task A_read_only_run_root_is_named_before_training_with_exit_2()
    {
        var source = Path.Combine(_tiny.Root, "ro-source");
        var root = Path.Combine(_tiny.Root, "read-only");
        Directory.CreateDirectory(source);
        Directory.CreateDirectory(root);
        _mounts.Bind(source, root, readOnly: true);

        var outcome = await Train(root, "nowhere", "colm.train.steps=3");

        Assert.True(outcome.ExitCode == 2, $"exit {outcome.ExitCode}\n{outcome.Stderr}");
        Assert.Contains("read-only file system (EROFS)", outcome.Stderr);
        Assert.Contains("colm.run.root", outcome.Stderr);
        Assert.DoesNotContain("internal error", outcome.Stderr);
        Assert.DoesNotContain("   at ", outcome.Stderr);
    }

    [RequiresMountFact]
    public async Task Storage_that_turns_read_only_mid_run_is_named_within_seconds_with_exit_2()
    {
        var source = Path.Combine(_tiny.Root, "rw-source");
        var root = Path.Combine(_tiny.Root, "turns-read-only");
        Directory.CreateDirectory(source);
        Directory.CreateDirectory(root);
        _mounts.Bind(source, root, readOnly: false);
        var train = Train(root, "frozen-disk", "colm.train.steps=5000", "colm.train.checkpoint-every=5");
        await TinyRun.UntilMetricsShow(Path.Combine(root, "frozen-disk"), "checkpoint", train);

        var clock = Stopwatch.StartNew();
        Mounts.RemountReadOnly(root);
        var outcome = await train;

        Assert.True(outcome.ExitCode == 2, $"exit {outcome.ExitCode}\n{outcome.Stderr}");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"took {clock.Elapsed.TotalSeconds:0} s to notice");
        Assert.Contains("read-only file system (EROFS)", outcome.Stderr);
        Assert.DoesNotContain("   at ", outcome.Stderr);
    }

    /// <summary>A data file edited under a running job is the user's input changing: exit 2 at once, no restart loop.</summary>
    [Fact]
    public async Task A_data_file_that_changes_mid_run_stops_the_run_at_once_with_exit_2_and_no_trainer_restarts()
    {
        // More examples than the trainers' cache of tokenized examples (4,096), so later steps read the file again.
        var data = Path.Combine(_tiny.Root, "many.jsonl");
        File.WriteAllLines(data, Enumerable.Range(0, 6000).Select(i =>
            $"{{\"source\":\"{(i % 3 == 0 ? "sub" : "add")}\",\"instruction\":\"{i} + {i % 7}\",\"output\":\"{i + i % 7}\"}}"));
        var train = Train(_tiny.Root, "edited", "colm.train.steps=5000", "colm.data.kind=jsonl", $"colm.data.path={data}");
        var run = _tiny.RunPath("edited");
        await TinyRun.UntilMetricsShow(run, "step", train);

        File.AppendAllText(data, "{\"source\":\"add\",\"instruction\":\"1 + 1\",\"output\":\"2\"}\n");
        var outcome = await train;

        Assert.True(outcome.ExitCode == 2, $"exit {outcome.ExitCode}\n{outcome.Stderr}");
        Assert.Contains("file changed since its line index was built", outcome.Stderr);
        Assert.DoesNotContain("failed repeatedly", outcome.Stderr);
        Assert.DoesNotContain(File.ReadLines(Path.Combine(run, "metrics.jsonl")), l => l.Contains("\"kind\":\"restart\""));
        Assert.Contains("\"failed\"", File.ReadAllText(Path.Combine(run, "status.json")));
    }

    private Task<ColmProcess.Outcome> Train(string root, string name, params string[] extra)
    {
        var sets = _tiny.Sets(name, extra).Select(s => s.StartsWith("colm.run.root=", StringComparison.Ordinal) ? "colm.run.root=" + root : s);
        return ColmProcess.RunAsync(_tiny.Root, ["train", "--quiet", .. sets.SelectMany(s => new[] { "--set", s })]);
    }

    /// <summary>Writes until the file system refuses another byte.</summary>
    private static void FillUp(string path)
    {
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1);
        foreach (int chunk in new[] { 1 << 20, 4096, 1 })
        {
            var bytes = new byte[chunk];
            try
            {
                while (true) file.Write(bytes);
            }
            catch (IOException)
            {
                // Full at this chunk size; try smaller pieces to fill what is left.
            }
        }
    }
}
