using Akka.Actor;
using Akka.Configuration;
using CoLM.Cluster.Actors;
using CoLM.Collectives;
using CoLM.Collectives.Tcp;
using CoLM.Telemetry;
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
        var config = ClusterAkkaConfig.For(c, c.Roles, c.SeedNodes, hocon);
        var t = settings.Telemetry;
        using var metrics = TelemetryPipeline.Start(new TelemetryOptions(TelemetryOptions.SplitPrometheus(t.Exporter).PerProcess,
            "", t.MetricInterval, t.PrometheusHost, t.PrometheusPort));
        if (metrics.PrometheusUrl is { } url) say($"metrics at {url}");
        var system = ActorSystem.Create(ClusterAkkaConfig.SystemName, config);
        var shutdown = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            var cluster = Akka.Cluster.Cluster.Get(system);
            var up = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            cluster.RegisterOnMemberUp(() => up.TrySetResult());
            // With no seed nodes this node is the first member: it forms the cluster on its own.
            if (c.SeedNodes.Count == 0) cluster.Join(cluster.SelfAddress);
            await WaitJoined(up.Task, c, stop);

            system.ActorOf(NodeAgent.Props(c, (run, trainers) => DataPlanes.ForCluster(run, c), reason => shutdown.TrySetResult(reason)), NodeAgent.Name);
            say($"node up at {cluster.SelfAddress} (roles: {string.Join(", ", c.Roles)}; trainers: " +
                (c.HasRole(ClusterSettings.TrainerRole) ? c.Devices.ToString() : "none") + ")");

            using var onStop = stop.Register(() => shutdown.TrySetResult("stopped"));
            // Downed by the split-brain resolver (this node was unreachable, or lost the coordinator's
            // side), its actor system stops by itself. A process left running with nothing listening
            // would never be restarted by its supervisor and could never rejoin: exit instead.
            var removed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            cluster.RegisterOnMemberRemoved(() => removed.TrySetResult());
            var first = await Task.WhenAny(shutdown.Task, removed.Task, system.WhenTerminated);
            if (first != shutdown.Task)
                throw new NodeRemovedException($"this node ({cluster.SelfAddress}) was removed from the cluster: its peers downed it " +
                    "(it was unreachable, e.g. paused or cut off) or it lost the coordinator's node; exiting so that a supervisor restarts it");
            string reason = await shutdown.Task;
            say($"leaving the cluster ({reason})");
            await cluster.LeaveAsync().WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { });
            return reason;
        }
        finally
        {
            await system.Terminate().WaitAsync(TimeSpan.FromSeconds(15)).ContinueWith(_ => { });
        }
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
