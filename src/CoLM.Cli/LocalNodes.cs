using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace CoLM.Cli;

/// <summary>
/// N `colm node` processes on loopback: node 0 the coordinator, the others trainers (one node does
/// both), or every node with both roles (a layout whose coordinator can fail over). A node can be
/// signalled, killed and started again on its port (a new incarnation), as a chaos run needs.
/// </summary>
public sealed class LocalNodes : IAsyncDisposable
{
    private readonly List<Process> _processes = new();
    // The last lines each node wrote, for saying why a node did what it did when output is not echoed.
    private readonly Dictionary<int, Queue<string>> _tails = [];
    private IReadOnlyList<string> _configFiles = [];
    private IReadOnlyList<string> _sets = [];
    private bool _allRoles;
    private int _coordinators = 1;
    private int _httpPort = 9464;

    private LocalNodes(int[] ports) => Ports = ports;

    public IReadOnlyList<int> Ports { get; }

    public string Seed => $"127.0.0.1:{Ports[0]}";

    /// <param name="echo">Stream the nodes' output to this console with a [node-i] prefix (otherwise it is discarded).</param>
    /// <param name="httpPort">Node i serves its metrics (when the prometheus exporter is on) at this port + i: one port per process.</param>
    /// <param name="allRoles">Every node gets both roles (coordinator and trainer).</param>
    /// <param name="coordinators">Nodes 0 to this - 1 have the coordinator role (node 0 only that one, the others train too: standbys).</param>
    public static LocalNodes Start(int n, IReadOnlyList<string> configFiles, IReadOnlyList<string> sets, bool echo, int httpPort = 9464,
        bool allRoles = false, int coordinators = 1)
    {
        var nodes = new LocalNodes(FreePorts(n)) { _configFiles = configFiles, _sets = sets, _allRoles = allRoles, _coordinators = coordinators, _httpPort = httpPort };
        try
        {
            for (int i = 0; i < n; i++)
            {
                string roles = nodes.RolesOf(i);
                nodes._processes.Add(nodes.StartNode(i, nodes.Ports[i], nodes.Ports[0], roles, configFiles, nodes.SetsOf(i), echo));
            }
            return nodes;
        }
        catch
        {
            nodes.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }
    }

    // Each node its own HTTP port (one per process on this machine), the same one when it is started again.
    private string[] SetsOf(int node) => [.. _sets, $"colm.telemetry.http-port={_httpPort + node}"];

    private string RolesOf(int node) =>
        Ports.Count == 1 || _allRoles ? "coordinator,trainer" : node == 0 ? "coordinator" : node < _coordinators ? "coordinator,trainer" : "trainer";

    public int ProcessId(int node) => _processes[node].Id;

    public bool HasExited(int node) => _processes[node].HasExited;

    /// <summary>SIGKILL: the process dies at once, its sockets closed by the kernel.</summary>
    public void Kill(int node) => _processes[node].Kill(entireProcessTree: true);

    /// <summary>Sends a POSIX signal (SIGSTOP 19 freezes a node, SIGCONT 18 thaws it); throws when it cannot be delivered.</summary>
    public void Signal(int node, int signal)
    {
        if (SendSignal(_processes[node].Id, signal) != 0) throw new InvalidOperationException($"could not send signal {signal} to node {node}");
    }

    /// <summary>Starts node <paramref name="node"/> again on its port (after it died): a new incarnation that joins through the seed, or through another node when it was the seed.</summary>
    public void Restart(int node, int via)
    {
        if (!_processes[node].HasExited) throw new InvalidOperationException($"node {node} is still running");
        _processes[node].Dispose();
        _processes[node] = StartNode(node, Ports[node], Ports[via], RolesOf(node), _configFiles, SetsOf(node), echo: false);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SendSignal(int pid, int signal);

    public async ValueTask DisposeAsync()
    {
        // Closing stdin asks a managed node to leave the cluster and exit.
        foreach (var p in _processes)
        {
            try { p.StandardInput.Close(); } catch (IOException) { } catch (InvalidOperationException) { }
        }
        using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        foreach (var p in _processes)
        {
            try
            {
                await p.WaitForExitAsync(patience.Token);
            }
            catch (OperationCanceledException)
            {
                p.Kill(entireProcessTree: true);
            }
            p.Dispose();
        }
        _processes.Clear();
    }

    /// <summary>The last lines node <paramref name="node"/> wrote (its current or last process).</summary>
    public string Tail(int node)
    {
        lock (_tails) return _tails.TryGetValue(node, out var tail) ? string.Join("\n", tail) : "";
    }

    private void Remember(int node, string line)
    {
        lock (_tails)
        {
            if (!_tails.TryGetValue(node, out var tail)) _tails[node] = tail = new Queue<string>();
            tail.Enqueue(line);
            while (tail.Count > 40) tail.Dequeue();
        }
    }

    private Process StartNode(int index, int port, int seedPort, string roles, IReadOnlyList<string> configFiles, IReadOnlyList<string> sets, bool echo)
    {
        var start = LaunchCommand.SelfStartInfo(
            ["node", "--managed", "--host", "127.0.0.1", "--port", port.ToString(), "--seed-nodes", $"127.0.0.1:{seedPort}", "--roles", roles],
            configFiles, sets);
        start.RedirectStandardInput = true;
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start node {index}");
        string prefix = $"[node-{index}] ";
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            Remember(index, e.Data);
            if (echo) Console.WriteLine(prefix + e.Data);
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            Remember(index, e.Data);
            if (echo) Console.Error.WriteLine(prefix + e.Data);
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static int[] FreePorts(int count)
    {
        var listeners = Enumerable.Range(0, count).Select(_ => new TcpListener(IPAddress.Loopback, 0)).ToArray();
        foreach (var l in listeners) l.Start();
        var ports = listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
        foreach (var l in listeners) l.Stop();
        return ports;
    }
}
