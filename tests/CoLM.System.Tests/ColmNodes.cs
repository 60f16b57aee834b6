using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace CoLM.System.Tests;

/// <summary>Real `colm node` processes on loopback: node 0 is the seed (and coordinator), the rest trainers.</summary>
public sealed class ColmNodes : IDisposable
{
    private readonly List<(Process Process, StringBuilder Output)> _nodes = new();

    private ColmNodes(int seedPort) => SeedPort = seedPort;

    public int SeedPort { get; }

    public string Seed => $"127.0.0.1:{SeedPort}";

    public int Count => _nodes.Count;

    /// <summary>Starts a coordinator node and <paramref name="trainerNodes"/> trainer nodes, and waits until each says it is up.</summary>
    public static async Task<ColmNodes> StartAsync(string workingDirectory, int trainerNodes, params string[] sets)
    {
        var nodes = new ColmNodes(FreePort());
        nodes.Start(workingDirectory, ["--roles", "coordinator", "--port", nodes.SeedPort.ToString()], sets);
        await nodes.WaitForOutput(0, "node up at", TimeSpan.FromSeconds(60));
        for (int i = 0; i < trainerNodes; i++)
            nodes.Start(workingDirectory, ["--roles", "trainer", "--port", "0", "--seed-nodes", nodes.Seed], sets);
        for (int i = 1; i <= trainerNodes; i++) await nodes.WaitForOutput(i, "node up at", TimeSpan.FromSeconds(60));
        return nodes;
    }

    /// <summary>
    /// Starts <paramref name="count"/> nodes that each have both roles (coordinator and trainer, one
    /// trainer each), the first being the seed: the layout in which the coordinator can fail over.
    /// </summary>
    public static async Task<ColmNodes> StartAllRolesAsync(string workingDirectory, int count, params string[] sets)
    {
        var nodes = new ColmNodes(FreePort());
        nodes.Start(workingDirectory, ["--roles", "coordinator,trainer", "--port", nodes.SeedPort.ToString()], sets);
        await nodes.WaitForOutput(0, "node up at", TimeSpan.FromSeconds(60));
        for (int i = 1; i < count; i++)
        {
            // One at a time: the join order is the age order that decides which node hosts the coordinator.
            nodes.Start(workingDirectory, ["--roles", "coordinator,trainer", "--port", "0", "--seed-nodes", nodes.Seed], sets);
            await nodes.WaitForOutput(i, "node up at", TimeSpan.FromSeconds(60));
        }
        return nodes;
    }

    /// <summary>Starts one more trainer node that joins through the seed (a replacement for a lost one); returns its index.</summary>
    public async Task<int> AddTrainerAsync(string workingDirectory, TimeSpan joinWithin, params string[] sets)
    {
        Start(workingDirectory, ["--roles", "trainer", "--port", "0", "--seed-nodes", Seed], sets);
        int node = _nodes.Count - 1;
        try
        {
            await WaitForOutput(node, "node up at", joinWithin);
        }
        catch (TimeoutException)
        {
            // Why a node cannot join is usually in the others' output (who downed whom).
            throw new TimeoutException($"the new node {node} did not join within {joinWithin.TotalSeconds:0}s\n{AllOutput()}");
        }
        return node;
    }

    public bool HasExited(int node) => _nodes[node].Process.HasExited;

    /// <summary>The shared libraries node's process has mapped now (from /proc/PID/maps).</summary>
    public IReadOnlySet<string> LoadedLibraries(int node) =>
        File.ReadLines($"/proc/{_nodes[node].Process.Id}/maps")
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length >= 6 && f[5].Contains(".so", StringComparison.Ordinal))
            .Select(f => Path.GetFileName(f[5]))
            .ToHashSet(StringComparer.Ordinal);

    /// <summary>Sends a real signal (SIGSTOP = 19, SIGCONT = 18 on Linux x86-64 and arm64).</summary>
    public void Signal(int node, int signal)
    {
        if (SendSignal(_nodes[node].Process.Id, signal) != 0) throw new InvalidOperationException($"could not send signal {signal} to node {node}");
    }

    public async Task<int> WaitForExitAsync(int node, TimeSpan timeout)
    {
        using var patience = new CancellationTokenSource(timeout);
        try
        {
            await _nodes[node].Process.WaitForExitAsync(patience.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"node {node} did not exit within {timeout.TotalSeconds:0}s; its output:\n{Output(node)}");
        }
        return _nodes[node].Process.ExitCode;
    }

    public string Output(int node)
    {
        lock (_nodes[node].Output) return _nodes[node].Output.ToString();
    }

    /// <summary>Every node's output, each under its index: what a failed cluster test needs to show.</summary>
    public string AllOutput() => string.Join("\n", Enumerable.Range(0, Count).Select(i => $"--- node {i}:\n{Output(i)}"));

    public void Kill(int node) => _nodes[node].Process.Kill(entireProcessTree: true);

    /// <summary>SIGTERM, as a container runtime or SLURM sends it; returns the exit code.</summary>
    public async Task<int> TerminateAsync(int node, TimeSpan timeout)
    {
        const int SigTerm = 15;
        if (SendSignal(_nodes[node].Process.Id, SigTerm) != 0) throw new InvalidOperationException($"could not signal node {node}");
        using var patience = new CancellationTokenSource(timeout);
        await _nodes[node].Process.WaitForExitAsync(patience.Token);
        return _nodes[node].Process.ExitCode;
    }

    public async Task WaitForOutput(int node, string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!Output(node).Contains(text, StringComparison.Ordinal))
        {
            if (_nodes[node].Process.HasExited || DateTime.UtcNow > deadline)
                throw new TimeoutException($"node {node} did not print '{text}'; its output:\n{Output(node)}");
            await Task.Delay(100);
        }
    }

    [global::System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    internal static extern int SendSignal(int pid, int signal);

    public void Dispose()
    {
        foreach (var (process, _) in _nodes)
        {
            try
            {
                if (!process.HasExited) process.Kill(entireProcessTree: true);
                process.WaitForExit(10_000);
            }
            catch (InvalidOperationException)
            {
                // Never started or already reaped.
            }
            process.Dispose();
        }
    }

    private void Start(string workingDirectory, string[] args, string[] sets)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "colm.dll"));
        start.ArgumentList.Add("node");
        start.ArgumentList.Add("--managed");
        start.ArgumentList.Add("--host");
        start.ArgumentList.Add("127.0.0.1");
        foreach (var a in args) start.ArgumentList.Add(a);
        // Several nodes per test on one machine: no HTTP host each (the dashboard tests ask for one on a free port).
        start.Environment["COLM__TELEMETRY__HTTP"] = "off";
        foreach (var s in sets)
        {
            start.ArgumentList.Add("--set");
            start.ArgumentList.Add(s);
        }
        var process = Process.Start(start)!;
        var output = new StringBuilder();
        DataReceivedEventHandler append = (_, e) =>
        {
            if (e.Data is null) return;
            lock (output) output.AppendLine(e.Data);
        };
        process.OutputDataReceived += append;
        process.ErrorDataReceived += append;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _nodes.Add((process, output));
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
