using System.Diagnostics;

namespace CoLM.Deploy.Tests;

public sealed class SlurmTests : IDisposable
{
    private static readonly string Script = Repo.PathOf("deploy/slurm/colm.sbatch");
    private readonly string _stubs = Path.Combine(Path.GetTempPath(), "colm-slurm-" + Guid.NewGuid().ToString("N"));

    public SlurmTests()
    {
        // Fake SLURM: scontrol expands the node list; srun must never run in dry-run mode.
        Directory.CreateDirectory(_stubs);
        Stub("scontrol", """
            #!/usr/bin/env bash
            if [[ "$1 $2" == "show hostnames" && "$3" == "gpu[01-03]" ]]; then printf 'gpu01\ngpu02\ngpu03\n'; exit 0; fi
            echo "unexpected scontrol $*" >&2; exit 2
            """);
        Stub("srun", """
            #!/usr/bin/env bash
            echo "srun must not run in dry-run mode: $*" >&2; exit 3
            """);
    }

    public void Dispose() => Directory.Delete(_stubs, recursive: true);

    private void Stub(string name, string body)
    {
        string path = Path.Combine(_stubs, name);
        File.WriteAllText(path, body.Replace("\r\n", "\n") + "\n");
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    private static (int Code, string Out, string Err) Bash(IEnumerable<string> args, IDictionary<string, string?> env)
    {
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in args)
            start.ArgumentList.Add(arg);
        foreach (string key in start.Environment.Keys.Where(k => k.StartsWith("SLURM_", StringComparison.Ordinal) || k.StartsWith("COLM", StringComparison.Ordinal)).ToList())
            start.Environment.Remove(key);
        foreach (var (key, value) in env)
            start.Environment[key] = value;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(30_000), "bash did not finish");
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    private Dictionary<string, string?> FakeJob() => new()
    {
        ["PATH"] = _stubs + Path.PathSeparator + Environment.GetEnvironmentVariable("PATH"),
        ["SLURM_JOB_NODELIST"] = "gpu[01-03]",
        ["SLURM_SUBMIT_DIR"] = "/shared/project",
        ["COLM"] = "/shared/colm/colm",
        ["COLM_DRY_RUN"] = "1",
    };

    [Fact]
    public void The_script_is_valid_bash()
    {
        var (code, _, err) = Bash(["-n", Script], new Dictionary<string, string?>());
        Assert.True(code == 0, err);
    }

    [Fact]
    public void Dry_run_starts_one_node_per_host_with_the_first_host_as_seed_then_submits_and_stops()
    {
        var (code, output, err) = Bash([Script, "--set", "colm.train.steps=5"], FakeJob());
        Assert.True(code == 0, $"exit {code}: {err}\n{output}");
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);

        var nodes = lines.Where(l => l.Contains("/shared/colm/colm node ", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, nodes.Count);
        string[] hosts = ["gpu01", "gpu02", "gpu03"];
        for (int i = 0; i < hosts.Length; i++)
        {
            var words = nodes[i].Split(' ');
            Assert.Equal("srun", words[0]);
            Assert.Contains($"--nodelist={hosts[i]}", words);
            Assert.Equal(hosts[i], Repo.Flag(words, "--public-host"));
            Assert.Equal("gpu01:2551", Repo.Flag(words, "--seed-nodes"));
            Assert.Equal("2551", Repo.Flag(words, "--port"));
            Assert.Equal("0.0.0.0", Repo.Flag(words, "--host"));
            Assert.Equal(i == 0 ? "coordinator,trainer" : "trainer", Repo.Flag(words, "--roles"));
            Assert.Equal("colm.run.root=/shared/project/runs", Repo.Flag(words, "--set"));
        }

        int train = Array.FindIndex(lines, l => l.StartsWith("/shared/colm/colm train ", StringComparison.Ordinal));
        Assert.True(train > 0, output);
        Assert.EndsWith("train --cluster gpu01:2551 --set colm.run.root=/shared/project/runs --set colm.train.steps=5", lines[train]);
        // The nodes are waited for before the submission and stopped after it.
        Assert.Equal(3, lines.Take(train).Count(l => l.StartsWith("# wait for gpu0", StringComparison.Ordinal)));
        Assert.Equal("# stop 3 nodes", lines[^1]);
    }

    [Fact]
    public void Port_config_and_node_flags_come_from_the_environment()
    {
        var env = FakeJob();
        env["COLM_PORT"] = "3551";
        env["COLM_CONFIG"] = "/shared/colm.conf";
        env["COLM_DEVICES"] = "cuda:0,1";
        env["COLM_NODE_ARGS"] = "--set colm.telemetry.exporter=file,prometheus";
        var (code, output, err) = Bash([Script], env);
        Assert.True(code == 0, err);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        foreach (string node in lines.Where(l => l.Contains(" node ", StringComparison.Ordinal)))
        {
            var words = node.Split(' ');
            Assert.Equal("gpu01:3551", Repo.Flag(words, "--seed-nodes"));
            Assert.Equal("/shared/colm.conf", Repo.Flag(words, "--config"));
            Assert.Equal("cuda:0,1", Repo.Flag(words, "--devices"));
            Assert.EndsWith("--set colm.telemetry.exporter=file,prometheus", node);
        }
        Assert.Contains(lines, l => l.EndsWith("train --cluster gpu01:3551 --config /shared/colm.conf --set colm.run.root=/shared/project/runs", StringComparison.Ordinal));
    }

    [Fact]
    public void Dry_run_quotes_words_the_shell_would_split()
    {
        var (code, output, err) = Bash([Script, "--set", "colm.run.name=it's a run"], FakeJob());
        Assert.True(code == 0, err);
        Assert.Contains(output.Split('\n'), l => l.EndsWith("--set 'colm.run.name=it'\\''s a run'", StringComparison.Ordinal));
    }

    [Fact]
    public void Outside_a_slurm_job_the_script_refuses_to_start()
    {
        var env = FakeJob();
        env.Remove("SLURM_JOB_NODELIST");
        var (code, _, err) = Bash([Script], env);
        Assert.NotEqual(0, code);
        Assert.Contains("SLURM_JOB_NODELIST", err, StringComparison.Ordinal);
    }
}
