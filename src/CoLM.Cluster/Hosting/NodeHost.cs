using Akka.Actor;
using Akka.Configuration;
using CoLM.Cluster.Actors;
using CoLM.Collectives;
using CoLM.Collectives.Tcp;

using CoLM.Telemetry;
using CoLM.Telemetry.Dashboard;
using CoLM.Telemetry.Http;
using CoLM.Training.Settings;

namespace CoLM.Cluster.Hosting;

/// <summary>
/// `colm node`: one cluster member that waits for runs. It joins the seed nodes (or starts a
/// cluster when it has none), hosts a <see cref="NodeAgent"/>, and leaves the cluster cleanly when
/// stopped (Ctrl-C, SIGTERM, or a <see cref="ShutdownNode"/> from `colm launch`).
/// </summary>
public static class NodeHost
{
    public static async Task<string> RunAsync(ColmSettings settings, Config hocon, Action<string> say, CancellationToken stop)
    {
        var c = settings.Cluster;
        var shutdown = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var node = await HostedNode.StartAsync(settings, c, hocon, (run, trainers) => DataPlanes.ForCluster(run, c),
            reason => shutdown.TrySetResult(reason), stop);
        if (node.HttpUrl is { } url) say($"dashboard, metrics and health at {url}");
        var cluster = node.Cluster;
        say($"node up at {cluster.SelfAddress} (roles: {string.Join(", ", c.Roles)}; trainers: " +
            (c.HasRole(ClusterSettings.TrainerRole) ? c.Devices.ToString() : "none") + ")");

        using var onStop = stop.Register(() => shutdown.TrySetResult("stopped"));
        // Downed by the split-brain resolver (this node was unreachable, or lost the coordinator's
        // side), its actor system stops by itself. A process left running with nothing listening
        // would never be restarted by its supervisor and could never rejoin: exit instead.
        var removed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        cluster.RegisterOnMemberRemoved(() => removed.TrySetResult());
        var first = await Task.WhenAny(shutdown.Task, removed.Task, node.System.WhenTerminated);
        if (first != shutdown.Task)
            throw new NodeRemovedException($"this node ({cluster.SelfAddress}) was removed from the cluster: its peers downed it " +
                "(it was unreachable, e.g. paused or cut off) or it lost the coordinator's node; exiting so that a supervisor restarts it");
        string reason = await shutdown.Task;
        say($"leaving the cluster ({reason})");
        await cluster.LeaveAsync().WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { });
        return reason;
    }

    internal static async Task WaitJoined(Task up, ClusterSettings c, CancellationToken stop)
    {
        try
        {
            await up.WaitAsync(c.JoinTimeout, stop);
        }
        catch (TimeoutException)
        {
            string seeds = c.SeedNodes.Count == 0 ? "itself" : string.Join(", ", c.SeedNodes);
            throw new ClusterJoinException(
                $"could not join the cluster through {seeds} within {c.JoinTimeout.TotalSeconds:0}s (colm.cluster.join-timeout); " +
                "is a seed node running and reachable at that address?");
        }
    }
}

/// <summary>
/// One cluster member hosting a <see cref="NodeAgent"/>: the wiring every layout shares. `colm
/// node` starts one and waits for runs; a single-process `colm train` (<see cref="LocalRun"/>)
/// starts one with both roles and submits its run to it. Same Akka configuration rendering
/// (<see cref="ClusterAkkaConfig"/>), same actor paths, same supervision, same per-process
/// Prometheus endpoint; only the data plane differs (TCP between processes, in-process within one).
/// </summary>
public sealed class HostedNode : IAsyncDisposable
{
    private readonly TelemetryPipeline _metrics;
    private NodeHttpHost? _http;

    private HostedNode(ActorSystem system, TelemetryPipeline metrics)
    {
        System = system;
        _metrics = metrics;
    }

    /// <summary>The runs this node's dashboard lists (each run submitted to it).</summary>
    public RunCatalog Runs { get; } = new();

    public ActorSystem System { get; }

    public Akka.Cluster.Cluster Cluster => Akka.Cluster.Cluster.Get(System);

    /// <summary>The HTTP host's base URL (dashboard at /, /metrics, /healthz, /readyz), or null when colm.telemetry.http is off.</summary>
    public string? HttpUrl => _http?.Url;

    /// <summary>Joins the seed nodes of <paramref name="node"/> (or forms a cluster of one without any) and starts the node agent.</summary>
    public static async Task<HostedNode> StartAsync(ColmSettings settings, ClusterSettings node, Config hocon,
        Func<ColmSettings, int, IDataPlane> dataPlanes, Action<string> shutdown, CancellationToken stop)
    {
        var t = settings.Telemetry;
        var system = ActorSystem.Create(ClusterAkkaConfig.SystemName, ClusterAkkaConfig.For(node, node.Roles, node.SeedNodes, hocon));
        TelemetryPipeline metrics;
        try
        {
            // The process-wide exporters (prometheus, otlp), with the runtime's and the process's metrics, named by this node's address.
            metrics = TelemetryPipeline.Start(new TelemetryOptions(TelemetryOptions.SplitPerProcess(t.Exporter).PerProcess, "", t.MetricInterval,
                t.OtlpEndpoint, Akka.Cluster.Cluster.Get(system).SelfAddress.ToString(), ProcessMetrics: true));
        }
        catch
        {
            await system.Terminate();
            throw;
        }
        var hosted = new HostedNode(system, metrics);
        try
        {
            var cluster = hosted.Cluster;
            // Before joining, so probes and the port-in-use error come first; ready once this node is Up.
            if (t.Http)
                hosted._http = await NodeHttpHost.StartAsync(new HttpHostOptions(t.HttpHost, t.HttpPort), metrics.Meters,
                    () => cluster.SelfMember.Status == Akka.Cluster.MemberStatus.Up, hosted.Runs, () => Members(cluster));
            var up = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            cluster.RegisterOnMemberUp(() => up.TrySetResult());
            // With no seed nodes this node is the first member: it forms the cluster on its own.
            if (node.SeedNodes.Count == 0) cluster.Join(cluster.SelfAddress);
            await NodeHost.WaitJoined(up.Task, node, stop);
            system.ActorOf(NodeAgent.Props(node, dataPlanes, shutdown, hosted.Runs), NodeAgent.Name);
            return hosted;
        }
        catch
        {
            await hosted.DisposeAsync();
            throw;
        }
    }

    private static IReadOnlyList<MemberView> Members(Akka.Cluster.Cluster cluster)
    {
        var state = cluster.State;
        return [.. state.Members.Select(m => new MemberView(m.Address.ToString(), [.. m.Roles.Order()], m.Status.ToString(), !state.Unreachable.Contains(m)))];
    }

    public async ValueTask DisposeAsync()
    {
        await System.Terminate().WaitAsync(TimeSpan.FromSeconds(15)).ContinueWith(_ => { });
        if (_http is not null) await _http.DisposeAsync();
        _metrics.Dispose();
    }
}

/// <summary>Which data plane a node's trainers use.</summary>
public static class DataPlanes
{
    /// <summary>
    /// Trainers in different processes reach each other over TCP; the in-process group serves
    /// only a run whose every trainer lives in one process (<see cref="LocalRun"/>).
    /// </summary>
    public static IDataPlane ForCluster(ColmSettings run, ClusterSettings node) =>
        new TcpDataPlane(node.Hostname, node.AdvertisedHostname, new TcpRingOptions(run.Cluster.CollectiveTimeout));
}

public sealed class ClusterJoinException(string message) : Exception(message);

/// <summary>The cluster removed this node while it ran; the process must exit non-zero.</summary>
public sealed class NodeRemovedException(string message) : Exception(message);
