using System.Collections.Immutable;
using System.Text.RegularExpressions;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Tools.Singleton;
using CoLM.Cluster.Actors;
using CoLM.Cluster.Configuration;
using CoLM.Cluster.Runs;
using CoLM.Training.Settings;
using ClusterSettings = CoLM.Training.Settings.ClusterSettings;

namespace CoLM.Cluster.Hosting;

/// <summary>What a submission needs: the run's config layers, and the cluster to reach.</summary>
public sealed record ClusterSubmission(
    string SeedNode, IReadOnlyList<string> ConfigFiles, IReadOnlyList<string> Sets, string? ResumeDir, int ExpectedNodes = 0);

/// <summary>What the client learned before the run started, for the console.</summary>
public sealed record ClusterRunStart(RunPlan Plan, IReadOnlyList<NodeDescription> Nodes);

/// <summary>
/// `colm train --cluster`: joins the cluster as a client member (no roles, hosts nothing), asks
/// every node what it offers, sizes the run to the trainers present, submits it to every node,
/// relays the coordinator's progress to <see cref="IRunObserver"/>, and ends the run on every
/// node when the coordinator reports the end (or when the client is stopped).
/// </summary>
public static class ClusterRunClient
{
    public static async Task<RunResult> RunAsync(ClusterSubmission submission, IRunObserver observer, Action<ClusterRunStart> started, CancellationToken stop)
    {
        // The client's own settings (hostname, timeouts) come from the same layers as the run.
        var clientSettings = ClientSettings(submission);
        var c = clientSettings.Cluster with { Port = 0, SeedNodes = [submission.SeedNode] };
        // The same layers as the nodes' (akka.* settings included): a member whose split-brain
        // resolver or failure detector is timed differently from the others' can be the leader
        // that decides for all of them.
        var system = ActorSystem.Create(ClusterAkkaConfig.SystemName,
            ClusterAkkaConfig.For(c, ["client"], c.SeedNodes, RunPlan.Layer(null, submission.ConfigFiles, submission.Sets)));
        try
        {
            var cluster = Akka.Cluster.Cluster.Get(system);
            var up = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            cluster.RegisterOnMemberUp(() => up.TrySetResult());
            await NodeHost.WaitJoined(up.Task, c, stop);

            var nodes = await DiscoverNodes(system, cluster, submission.ExpectedNodes, c.JoinTimeout, stop);
            int trainers = nodes.Sum(n => n.Trainers);
            if (!nodes.Any(n => n.Roles.Contains(ClusterSettings.CoordinatorRole)))
                throw new ClusterRunException("no node in the cluster has the coordinator role (colm.cluster.roles)");
            if (trainers == 0)
                throw new ClusterRunException("no node in the cluster has the trainer role (colm.cluster.roles)");
            if (nodes.FirstOrDefault(n => n.ActiveRun is not null) is { } busy)
                throw new ClusterRunException($"node {busy.Node} is busy with run {busy.ActiveRun}; one run per cluster at a time");

            // The run is sized to the cluster: every trainer present takes part.
            var plan = RunPlan.Prepare(submission.ConfigFiles,
                [.. submission.Sets, .. AbsolutePaths(clientSettings), $"colm.train.trainers={trainers}"], submission.ResumeDir);
            started(new ClusterRunStart(plan, nodes));
            var agents = nodes.Select(n => n.Node).ToArray();
            return await RunSubmission.FollowAsync(system, agents, plan, observer, c.PhaseTimeout, stop);
        }
        finally
        {
            var cluster = Akka.Cluster.Cluster.Get(system);
            await cluster.LeaveAsync().WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(_ => { });
            await system.Terminate().WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { });
        }
    }

    /// <summary>
    /// Nodes may run in other working directories: paths the user gave relative to this one are
    /// sent as absolute paths (on shared storage, every node sees them at the same place).
    /// </summary>
    private static IEnumerable<string> AbsolutePaths(ColmSettings s)
    {
        (string Key, string Value)[] paths =
            [("colm.run.root", s.Run.Root), ("colm.data.path", s.Data.Path), ("colm.model.path", s.Model.Path), ("colm.model.adapter", s.Model.Adapter)];
        foreach (var (key, value) in paths)
            if (value.Length > 0 && !Path.IsPathRooted(value)) yield return $"{key}={HoconSources.Quote(Path.GetFullPath(value))}";
    }

    private static ColmSettings ClientSettings(ClusterSubmission s) =>
        Configuration.SettingsReader.Read(RunPlan.Layer(null, s.ConfigFiles, s.Sets));

    /// <summary>Members with a node role, asked what they offer; waits for <paramref name="expected"/> of them when given.</summary>
    private static async Task<IReadOnlyList<NodeDescription>> DiscoverNodes(
        ActorSystem system, Akka.Cluster.Cluster cluster, int expected, TimeSpan timeout, CancellationToken stop)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var members = cluster.State.Members
                .Where(m => m.Status == MemberStatus.Up && (m.HasRole(ClusterSettings.CoordinatorRole) || m.HasRole(ClusterSettings.TrainerRole)))
                .ToArray();
            if (members.Length > 0 && (expected == 0 || members.Length >= expected))
            {
                var asks = members.Select(m => system.ActorSelection(m.Address + "/user/" + NodeAgent.Name)
                    .Ask<NodeDescription>(DescribeNode.Instance, TimeSpan.FromSeconds(10), stop));
                try
                {
                    return (await Task.WhenAll(asks)).OrderBy(n => n.Node, StringComparer.Ordinal).ToArray();
                }
                catch (AskTimeoutException) when (DateTime.UtcNow < deadline)
                {
                    // A member that is up but whose agent is not started yet: ask again shortly.
                }
            }
            if (DateTime.UtcNow >= deadline)
                throw new ClusterRunException(expected > 0
                    ? $"only {members.Length} of {expected} nodes joined within {timeout.TotalSeconds:0}s"
                    : $"no node with the coordinator or trainer role joined within {timeout.TotalSeconds:0}s");
            await Task.Delay(TimeSpan.FromMilliseconds(250), stop);
        }
    }
}

public sealed class ClusterRunException(string message) : Exception(message);
