using System.Text.RegularExpressions;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Tools.Singleton;
using CoLM.Cluster.Actors;
using CoLM.Cluster.Runs;
using ClusterSettings = CoLM.Training.Settings.ClusterSettings;

namespace CoLM.Cluster.Hosting;

/// <summary>
/// The client's side of a run, the same for every layout: submit the run to the node agents that
/// host it, wait until each accepts, relay the coordinator's progress to an <see cref="IRunObserver"/>,
/// ask for a clean stop when cancelled, and end the run on every node when the coordinator reports
/// its end. `colm train --cluster` follows a run on many nodes; a single-process `colm train`
/// follows one on the node it hosts itself (<see cref="LocalRun"/>).
/// </summary>
public static partial class RunSubmission
{
    /// <param name="nodes">The cluster addresses of the nodes that host the run (each has a <see cref="NodeAgent"/>).</param>
    /// <param name="acceptWithin">How long every node has to accept (colm.cluster.phase-timeout).</param>
    /// <param name="endOnNodes">
    /// Tell each node to end the run when it is over. A node that ends with its process (a
    /// single-process run) is left alone: stopping the run's singleton manager before the node
    /// leaves would make its shutdown wait out the cluster-exiting phase (10 s) for a manager
    /// that is gone.
    /// </param>
    public static async Task<RunResult> FollowAsync(ActorSystem system, IReadOnlyList<string> nodes, RunPlan plan, IRunObserver observer,
        TimeSpan acceptWithin, CancellationToken stop, bool endOnNodes = true)
    {
        string runId = RunId(plan.Run.Path);
        var ended = new TaskCompletionSource<RunResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        var accepted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var agents = nodes.Select(n => system.ActorSelection(n + "/user/" + NodeAgent.Name)).ToArray();
        var client = system.ActorOf(Props.Create(() => new RunClientActor(runId, agents.Length, observer, accepted, ended, plan.Run.Path)), "run-client");
        var submit = new SubmitRun(runId, plan.ResolvedConfig, Path.GetFullPath(plan.Run.Path), plan.ResumeFrom?.Directory is { } d ? Path.GetFullPath(d) : null, client);
        foreach (var agent in agents) agent.Tell(submit, client);
        try
        {
            await accepted.Task.WaitAsync(acceptWithin, stop);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            foreach (var agent in agents) agent.Tell(new EndRun(runId));
            throw new ClusterRunException(e is TimeoutException
                ? $"not every node accepted the run within {acceptWithin.TotalSeconds:0}s (colm.cluster.phase-timeout)"
                : "interrupted before the run started");
        }
        catch (ClusterRunException)
        {
            foreach (var agent in agents) agent.Tell(new EndRun(runId));
            throw;
        }

        // Trainer nodes that join from now on are offered the run too; the coordinator admits them at a step boundary.
        client.Tell(new OfferToNewcomers(submit, endOnNodes));
        var coordinator = system.ActorOf(ClusterSingletonProxy.Props(NodeAgent.CoordinatorPath(runId),
            ClusterSingletonProxySettings.Create(system).WithRole(ClusterSettings.CoordinatorRole)), "coordinator-proxy");
        await using var onStop = stop.Register(() => coordinator.Tell(new StopRequested("interrupted")));
        var result = await ended.Task;
        if (endOnNodes)
            foreach (var agent in agents) agent.Tell(new EndRun(runId));
        return result;
    }

    /// <summary>Actor names allow letters, digits and a few marks; the run folder's name, plus a nonce so a resubmission never meets an old actor.</summary>
    private static string RunId(string runPath) =>
        NotActorName().Replace(Path.GetFileName(Path.GetFullPath(runPath)), "-") + "-" + Guid.NewGuid().ToString("N")[..6];

    [GeneratedRegex("[^A-Za-z0-9_-]")]
    private static partial Regex NotActorName();

    /// <summary>Sent to the client's actor once every node accepted: offer the run to trainer nodes that join later.</summary>
    private sealed record OfferToNewcomers(SubmitRun Submit, bool EndOnNodes);

    /// <summary>
    /// The client's end of a run: acceptance from every node, then progress, then the end. A
    /// trainer node that joins the cluster mid-run (new, or a lost one restarted) is offered the
    /// run, so its trainers register and the coordinator admits them (elastic membership).
    /// </summary>
    private sealed class RunClientActor : ReceiveActor, IWithTimers
    {
        private const int OfferAttempts = 15;
        private static readonly TimeSpan OfferEvery = TimeSpan.FromSeconds(2);

        private readonly HashSet<string> _accepted = new();
        // Node processes (address and uid) that have the run or were offered it; a restarted node is a new one.
        private readonly HashSet<UniqueAddress> _offered = new();
        // Offers not yet answered, by node address; and the nodes that accepted one.
        private readonly Dictionary<string, Address> _pendingOffers = new(StringComparer.Ordinal);
        private readonly List<Address> _lateNodes = [];
        private OfferToNewcomers? _offer;
        private Address? _coordinatorNode;
        private long _lastStep;
        private readonly TaskCompletionSource<RunResult> _ended;
        private readonly IRunObserver _observer;
        private readonly string _runPath;

        public RunClientActor(string runId, int nodes, IRunObserver observer, TaskCompletionSource accepted,
            TaskCompletionSource<RunResult> ended, string runPath)
        {
            _observer = observer;
            _ended = ended;
            _runPath = runPath;
            Receive<RunAccepted>(m =>
            {
                if (m.RunId != runId) return;
                if (_offer is not null)
                {
                    if (!_pendingOffers.Remove(m.Node, out var late)) return;
                    Timers.Cancel("offer-" + m.Node);
                    _lateNodes.Add(late);
                    observer.OnNotice($"node {m.Node} joined the run with {m.Trainers} trainer(s); it is admitted at the next step boundary");
                }
                _accepted.Add(m.Node);
                if (_accepted.Count == nodes) accepted.TrySetResult();
            });
            Receive<RunRefused>(m =>
            {
                if (m.RunId != runId) return;
                if (_offer is null) accepted.TrySetException(new ClusterRunException($"node {m.Node} refused the run: {m.Reason}"));
                else if (_pendingOffers.Remove(m.Node))
                {
                    Timers.Cancel("offer-" + m.Node);
                    observer.OnNotice($"node {m.Node} joined the cluster but refused the run: {m.Reason}");
                }
            });
            Receive<OfferToNewcomers>(m =>
            {
                _offer = m;
                var cluster = Akka.Cluster.Cluster.Get(Context.System);
                foreach (var member in cluster.State.Members) _offered.Add(member.UniqueAddress);
                cluster.Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.MemberUp));
            });
            Receive<ClusterEvent.MemberUp>(m =>
            {
                if (_offer is null || !m.Member.HasRole(ClusterSettings.TrainerRole) || !_offered.Add(m.Member.UniqueAddress)) return;
                _pendingOffers[m.Member.Address.ToString()] = m.Member.Address;
                Self.Tell(new OfferRun(m.Member.Address, 1));
            });
            Receive<OfferRun>(m =>
            {
                // The node's agent starts just after the node is up: offer until it answers.
                if (_offer is null || !_pendingOffers.ContainsKey(m.Node.ToString())) return;
                Context.ActorSelection(m.Node + "/user/" + NodeAgent.Name).Tell(_offer.Submit, Self);
                if (m.Attempt < OfferAttempts) Timers.StartSingleTimer("offer-" + m.Node, m with { Attempt = m.Attempt + 1 }, OfferEvery);
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
            Receive<RunEnded>(m =>
            {
                if (_offer is { EndOnNodes: true })
                    foreach (var node in _lateNodes) Context.ActorSelection(node + "/user/" + NodeAgent.Name).Tell(new EndRun(runId));
                ended.TrySetResult(m.Result);
            });
            Receive<ClusterEvent.UnreachableMember>(m => Lost(m.Member));
            Receive<ClusterEvent.MemberRemoved>(m => Lost(m.Member));
            Receive<CoordinatorSilent>(m => ended.TrySetResult(new RunResult("failed", _lastStep, runPath, null, null,
                $"node {m.Node} left the cluster and the run's coordinator did not report within {m.Grace.TotalSeconds:0}s; " +
                $"the last checkpoint in {Path.Combine(runPath, "checkpoints")} is intact")));
        }

        // How long the client waits for a coordinator to report after the coordinator's node is lost:
        // briefly when no other coordinator-role node is left, long enough for a failover when one is
        // (unreachable ~4 s, the resolver's stable-after of 20 s, removal and the singleton's hand-over).
        private static readonly TimeSpan CoordinatorGrace = TimeSpan.FromSeconds(20), FailoverGrace = TimeSpan.FromSeconds(90);

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
            if (!hostedCoordinator) return;
            bool standby = Akka.Cluster.Cluster.Get(Context.System).State.Members.Any(m => m.HasRole(ClusterSettings.CoordinatorRole)
                && m.Status == MemberStatus.Up && !m.Address.Equals(member.Address));
            var grace = standby ? FailoverGrace : CoordinatorGrace;
            if (standby) _observer.OnNotice($"the coordinator's node {node} is lost; waiting up to {grace.TotalSeconds:0}s for another coordinator node to take over");
            Timers.StartSingleTimer(SilentTimer, new CoordinatorSilent(node, grace), grace);
        }

        private const string SilentTimer = "coordinator-silent";

        /// <summary>Progress comes from the coordinator itself, so its sender says which node hosts it; a coordinator that reports is not silent.</summary>
        private void NoteCoordinator()
        {
            if (Sender.IsNobody()) return;
            if (_coordinatorNode is { } known && !known.Equals(Sender.Path.Address)) Timers.Cancel(SilentTimer);
            _coordinatorNode = Sender.Path.Address;
        }

        private sealed record CoordinatorSilent(string Node, TimeSpan Grace);

        private sealed record OfferRun(Address Node, int Attempt);
    }
}
