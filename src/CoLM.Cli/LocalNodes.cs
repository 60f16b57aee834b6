using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace CoLM.Cli;

/// <summary>N `colm node` processes on loopback: node 0 the coordinator, the others trainers (one node does both).</summary>
public sealed class LocalNodes : IAsyncDisposable
{
    private readonly List<Process> _processes = new();

    private LocalNodes(int[] ports) => Ports = ports;

    public IReadOnlyList<int> Ports { get; }

    public string Seed => $"127.0.0.1:{Ports[0]}";

    /// <param name="echo">Stream the nodes' output to this console with a [node-i] prefix (otherwise it is discarded).</param>
    /// <param name="prometheusPort">Node i serves its metrics (when the prometheus exporter is on) at this port + i: one port per process.</param>
    public static LocalNodes Start(int n, IReadOnlyList<string> configFiles, IReadOnlyList<string> sets, bool echo, int prometheusPort = 9464)
    {
        var nodes = new LocalNodes(FreePorts(n));
        try
        {
            for (int i = 0; i < n; i++)
            {
                string roles = n == 1 ? "coordinator,trainer" : i == 0 ? "coordinator" : "trainer";
                string[] nodeSets = [.. sets, $"colm.telemetry.prometheus-port={prometheusPort + i}"];
                nodes._processes.Add(StartNode(i, nodes.Ports[i], nodes.Ports[0], roles, configFiles, nodeSets, echo));
            }
            return nodes;
        }
        catch
        {
            nodes.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }
    }

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

    private static Process StartNode(int index, int port, int seedPort, string roles, IReadOnlyList<string> configFiles, IReadOnlyList<string> sets, bool echo)
    {
        var start = LaunchCommand.SelfStartInfo(
            ["node", "--managed", "--host", "127.0.0.1", "--port", port.ToString(), "--seed-nodes", $"127.0.0.1:{seedPort}", "--roles", roles],
            configFiles, sets);
        start.RedirectStandardInput = true;
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start node {index}");
        string prefix = $"[node-{index}] ";
        process.OutputDataReceived += (_, e) => { if (echo && e.Data is not null) Console.WriteLine(prefix + e.Data); };
        process.ErrorDataReceived += (_, e) => { if (echo && e.Data is not null) Console.Error.WriteLine(prefix + e.Data); };
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
