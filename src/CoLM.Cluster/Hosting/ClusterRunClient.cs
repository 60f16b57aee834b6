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
public static partial class ClusterRunClient
{
    public static async Task<RunResult> RunAsync(ClusterSubmission submission, IRunObserver observer, Action<ClusterRunStart> started, CancellationToken stop)
    {
        // The client's own settings (hostname, timeouts) come from the same layers as the run.
        var clientSettings = ClientSettings(submission);
        var c = clientSettings.Cluster with { Port = 0, SeedNodes = [submission.SeedNode] };
        var system = ActorSystem.Create(ClusterAkkaConfig.SystemName,
            ClusterAkkaConfig.For(c, ["client"], c.SeedNodes, Configuration.HoconSources.Defaults()));
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
            string runId = RunId(plan.Run.Path);
            var ended = new TaskCompletionSource<RunResult>(TaskCreationOptions.RunContinuationsAsynchronously);
            var accepted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var agents = nodes.Select(n => system.ActorSelection(n.Node + "/user/" + NodeAgent.Name)).ToArray();
            var client = system.ActorOf(Props.Create(() => new RunClientActor(runId, nodes.Count, observer, accepted, ended, plan.Run.Path)), "run-client");
            var submit = new SubmitRun(runId, plan.ResolvedConfig, Path.GetFullPath(plan.Run.Path), plan.ResumeFrom?.Directory is { } d ? Path.GetFullPath(d) : null, client);
            foreach (var agent in agents) agent.Tell(submit, client);
            try
            {
                await accepted.Task.WaitAsync(c.PhaseTimeout, stop);
            }
            catch (Exception e) when (e is TimeoutException or OperationCanceledException)
            {
                foreach (var agent in agents) agent.Tell(new EndRun(runId));
                throw new ClusterRunException(e is TimeoutException
                    ? $"not every node accepted the run within {c.PhaseTimeout.TotalSeconds:0}s (colm.cluster.phase-timeout)"
                    : "interrupted before the run started");
            }
            catch (ClusterRunException)
            {
                foreach (var agent in agents) agent.Tell(new EndRun(runId));
                throw;
            }

            var coordinator = system.ActorOf(ClusterSingletonProxy.Props(NodeAgent.CoordinatorPath(runId),
                ClusterSingletonProxySettings.Create(system).WithRole(ClusterSettings.CoordinatorRole)), "coordinator-proxy");
            await using var onStop = stop.Register(() => coordinator.Tell(new StopRequested("interrupted")));
            var result = await ended.Task;
            foreach (var agent in agents) agent.Tell(new EndRun(runId));
            return result;
        }
        finally
        {
            var cluster = Akka.Cluster.Cluster.Get(system);
            await cluster.LeaveAsync().WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(_ => { });
            await system.Terminate().WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { });
        }
    }

    /// <summary>Actor names allow letters, digits and a few marks; the run folder's name, plus a nonce so a resubmission never meets an old actor.</summary>
    private static string RunId(string runPath) =>
        NotActorName().Replace(Path.GetFileName(Path.GetFullPath(runPath)), "-") + "-" + Guid.NewGuid().ToString("N")[..6];

    [GeneratedRegex("[^A-Za-z0-9_-]")]
    private static partial Regex NotActorName();

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

    /// <summary>The client's end of a run: acceptance from every node, then progress, then the end.</summary>
    private sealed class RunClientActor : ReceiveActor, IWithTimers
    {
        private readonly HashSet<string> _accepted = new();
        private Address? _coordinatorNode;
        private long _lastStep;
        private readonly TaskCompletionSource<RunResult> _ended;
        private readonly string _runPath;

        public RunClientActor(string runId, int nodes, IRunObserver observer, TaskCompletionSource accepted,
            TaskCompletionSource<RunResult> ended, string runPath)
        {
            _ended = ended;
            _runPath = runPath;
            Receive<RunAccepted>(m =>
            {
                if (m.RunId != runId) return;
                _accepted.Add(m.Node);
                if (_accepted.Count == nodes) accepted.TrySetResult();
            });
            Receive<RunRefused>(m =>
            {
                if (m.RunId == runId) accepted.TrySetException(new ClusterRunException($"node {m.Node} refused the run: {m.Reason}"));
            });
            Receive<RunStepReported>(m =>
            {
                NoteCoordinator();
                _lastStep = m.Report.Step;
                observer.OnStep(m.Report);
            });
            Receive<RunEvaluated>(m =>
            {
                NoteCoordinator();
                observer.OnEvaluation(m.Report);
            });
            Receive<RunNotice>(m =>
            {
                NoteCoordinator();
                observer.OnNotice(m.Message);
            });
            Receive<RunEnded>(m => ended.TrySetResult(m.Result));
            Receive<ClusterEvent.UnreachableMember>(m => Lost(m.Member));
            Receive<ClusterEvent.MemberRemoved>(m => Lost(m.Member));
            Receive<CoordinatorSilent>(m => ended.TrySetResult(new RunResult("failed", _lastStep, runPath, null, null,
                $"node {m.Node} left the cluster and the run's coordinator did not report within {CoordinatorGrace.TotalSeconds:0}s; " +
                $"the last checkpoint in {Path.Combine(runPath, "checkpoints")} is intact")));
        }

        private static readonly TimeSpan CoordinatorGrace = TimeSpan.FromSeconds(20);

        public ITimerScheduler Timers { get; set; } = null!;

        protected override void PreStart() =>
            Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
                typeof(ClusterEvent.UnreachableMember), typeof(ClusterEvent.MemberRemoved));

        /// <summary>
        /// Also reached when the cluster downs this client (its side lost the oldest coordinator
        /// node) before the grace period ends: the run's end must still be reported, never awaited forever.
        /// </summary>
        protected override void PostStop()
        {
            Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
            _ended.TrySetResult(new RunResult("failed", _lastStep, _runPath, null, null,
                "this client was removed from the cluster and the run's coordinator did not report the end of the run " +
                $"(its node is lost or cut off); the last checkpoint in {Path.Combine(_runPath, "checkpoints")} is intact"));
        }

        /// <summary>
        /// A node of the run is gone. The coordinator reports a lost trainer node itself; if the
        /// node hosted the coordinator nobody will, so the client gives up after a grace period
        /// (a standby coordinator cannot take over a run: it would have no trainers registering).
        /// </summary>
        private void Lost(Member member)
        {
            string node = member.Address.ToString();
            // Nodes outside the run, and trainer nodes (the coordinator reports those), need nothing here.
            if (!_accepted.Contains(node)) return;
            bool hostedCoordinator = _coordinatorNode is { } known
                ? known.Equals(member.Address)
                : member.HasRole(ClusterSettings.CoordinatorRole);
            if (hostedCoordinator)
                Timers.StartSingleTimer("coordinator-silent-" + node, new CoordinatorSilent(node), CoordinatorGrace);
        }

        /// <summary>Progress comes from the coordinator itself, so its sender says which node hosts it.</summary>
        private void NoteCoordinator()
        {
            if (!Sender.IsNobody()) _coordinatorNode = Sender.Path.Address;
        }

        private sealed record CoordinatorSilent(string Node);
    }
}

public sealed class ClusterRunException(string message) : Exception(message);
