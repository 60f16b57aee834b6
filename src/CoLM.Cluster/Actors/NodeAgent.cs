using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster.Tools.Singleton;
using Akka.Event;
using CoLM.Cluster.Hosting;
using CoLM.Cluster.Runs;
using CoLM.Collectives;
using CoLM.Telemetry;
using CoLM.Telemetry.Dashboard;
using CoLM.Training;
using CoLM.Training.Settings;

namespace CoLM.Cluster.Actors;

/// <summary>
/// One per `colm node` process, at /user/colm-node. It owns what a submitted run needs on this
/// node: with the coordinator role a singleton manager for the run's coordinator (the cluster
/// runs it on the oldest coordinator node), with the trainer role a guardian with one trainer
/// per local device and the data plane they share. One run at a time.
/// </summary>
public sealed class NodeAgent : ReceiveActor
{
    public const string Name = "colm-node";

    private readonly ClusterSettings _node;
    private readonly Func<ColmSettings, int, IDataPlane> _dataPlaneFactory;
    private readonly Action<string> _shutdown;
    private readonly RunCatalog _dashboard;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly string _address;
    private ActiveRun? _run;
    // Runs that ended, waiting for their trainers to stop before their sockets and exporters close.
    private readonly List<ActiveRun> _ending = [];

    public NodeAgent(ClusterSettings node, Func<ColmSettings, int, IDataPlane> dataPlaneFactory, Action<string> shutdown, RunCatalog dashboard)
    {
        _dashboard = dashboard;
        _node = node;
        _dataPlaneFactory = dataPlaneFactory;
        _shutdown = shutdown;
        _address = Akka.Cluster.Cluster.Get(Context.System).SelfAddress.ToString();

        Receive<DescribeNode>(_ => Sender.Tell(new NodeDescription(_address, [.. _node.Roles], Trainers, _node.Devices.ToString(), _run?.Id)));
        Receive<SubmitRun>(OnSubmit);
        Receive<EndRun>(m =>
        {
            if (_run?.Id == m.RunId) EndActiveRun("the run ended");
        });
        Receive<RunStopped>(OnRunStopped);
        Receive<ShutdownNode>(m =>
        {
            EndActiveRun("the node is shutting down");
            _shutdown(m.Reason);
        });
        Receive<Terminated>(m =>
        {
            // The client that submitted the run is gone (Ctrl-C twice, killed): nobody would end the run.
            if (_run is not null && m.ActorRef.Equals(_run.Client))
                EndActiveRun("its client left the cluster; the last checkpoint is intact");
        });
    }

    public static Props Props(ClusterSettings node, Func<ColmSettings, int, IDataPlane> dataPlaneFactory, Action<string> shutdown, RunCatalog dashboard) =>
        Akka.Actor.Props.Create(() => new NodeAgent(node, dataPlaneFactory, shutdown, dashboard));

    /// <summary>The path of a run's coordinator singleton manager, the same on every node.</summary>
    public static string CoordinatorPath(string runId) => $"/user/{Name}/{CoordinatorName(runId)}";

    private static string CoordinatorName(string runId) => "coordinator-" + runId;

    private int Trainers => _node.HasRole(ClusterSettings.TrainerRole) ? _node.Devices.Count : 0;

    protected override void PostStop()
    {
        // The process is going (a single-process run ended, or the node shuts down): close what is left now.
        _run?.DataPlane?.AbortAll("the node is stopping");
        _run?.Dispose();
        foreach (var run in _ending) run.Dispose();
        _ending.Clear();
    }

    private void OnSubmit(SubmitRun m)
    {
        if (_run?.Id == m.RunId)
        {
            // A repeated offer (the client offers a node that joined mid-run until it answers).
            Sender.Tell(new RunAccepted(m.RunId, _address, Trainers));
            return;
        }
        if (_run is not null)
        {
            Sender.Tell(new RunRefused(m.RunId, _address, $"this node is busy with run {_run.Id}"));
            return;
        }
        try
        {
            _run = Start(m);
            Context.Watch(m.Client);
            _log.Info("run {0}: started here ({1} trainers{2})", m.RunId, Trainers,
                _node.HasRole(ClusterSettings.CoordinatorRole) ? ", coordinator candidate" : "");
            Sender.Tell(new RunAccepted(m.RunId, _address, Trainers));
        }
        catch (Exception e)
        {
            _run?.Dispose();
            _run = null;
            _log.Error("run {0}: refused: {1}", m.RunId, e.Message);
            Sender.Tell(new RunRefused(m.RunId, _address, e.Message));
        }
    }

    private ActiveRun Start(SubmitRun m)
    {
        var (config, settings) = RunPlan.ReadSubmitted(m.Config);
        var data = RunPlan.LoadData(settings);
        var runDir = RunDirectory.OpenExisting(m.RunDirectory);
        _dashboard.Add(new DashboardRun(settings.Run.Name, runDir.Path));
        var run = new ActiveRun(m.RunId, m.Client);
        try
        {
            StartParts(m, config, settings, data, runDir, run);
            return run;
        }
        catch
        {
            // Whatever started before the failure goes with it: the node stays free for the next run.
            foreach (var child in run.Children) Context.Stop(child);
            run.Dispose();
            throw;
        }
    }

    private void StartParts(SubmitRun m, Akka.Configuration.Config config, ColmSettings settings, Data.DataMixture data, RunDirectory runDir, ActiveRun run)
    {
        // The node's Prometheus endpoint (if any) lives as long as the process; the run adds its own file or console export.
        var (_, perRun) = TelemetryOptions.SplitPerProcess(settings.Telemetry.Exporter);
        run.Own(TelemetryPipeline.Start(new TelemetryOptions(perRun, Path.Combine(runDir.Path, TelemetryFile(settings)), settings.Telemetry.MetricInterval)));

        if (_node.HasRole(ClusterSettings.CoordinatorRole))
        {
            CheckpointPaths? resume = null;
            if (m.ResumeCheckpoint is { } dir)
            {
                // The client chose the newest checkpoint that verifies; this node checks that folder itself.
                resume = CheckpointStore.At(dir) ?? throw new RunDirectoryException(dir, "is not a checkpoint folder (step-N)");
                if (!Directory.Exists(dir))
                    throw new RunDirectoryException(dir, "this node does not see the checkpoint; is the run directory on shared storage?");
                if (CheckpointVerifier.Verify(resume) is { Problem: { } problem })
                    throw new RunDirectoryException(dir, $"does not verify on this node: {problem}");
            }
            var instruments = run.Own(new ColmInstruments(Path.GetFileName(runDir.Path)));
            var completion = new TaskCompletionSource<RunResult>(TaskCreationOptions.RunContinuationsAsynchronously);
            var client = m.Client;
            string id = m.RunId;
            completion.Task.ContinueWith(t => client.Tell(new RunEnded(id, t.IsCompletedSuccessfully ? t.Result : CouldNotStart(t.Exception, runDir))));
            var context = new CoordinatorContext(settings, Configuration.HoconWriter.Write(config, "colm"), data, runDir, instruments,
                new ClientObserver(client, id), completion, resume, id);
            run.Children.Add(Context.ActorOf(ClusterSingletonManager.Props(CoordinatorActor.Props(context), PoisonPill.Instance,
                ClusterSingletonManagerSettings.Create(Context.System).WithRole(ClusterSettings.CoordinatorRole)), CoordinatorName(m.RunId)));
        }

        if (Trainers > 0)
        {
            int threads = settings.Train.ThreadsFor(Environment.ProcessorCount, Trainers);
            var dataPlane = run.Own(_dataPlaneFactory(settings, Trainers));
            run.DataPlane = dataPlane;
            var coordinator = Context.ActorOf(ClusterSingletonProxy.Props(CoordinatorPath(m.RunId),
                ClusterSingletonProxySettings.Create(Context.System).WithRole(ClusterSettings.CoordinatorRole)), "coordinator-proxy-" + m.RunId);
            run.Children.Add(coordinator);
            var trainerContext = new TrainerContext(settings, data, dataPlane, new FaultInjector(settings.Train.Faults), coordinator, _address,
                Akka.Cluster.Cluster.Get(Context.System).SelfUniqueAddress.Uid, threads);
            run.Children.Add(Context.ActorOf(NodeGuardian.Props(trainerContext, Trainers), "trainers-" + m.RunId));
        }
    }

    /// <summary>The run's end when its coordinator could not even start (a checkpoint of another method, unreadable files).</summary>
    private static RunResult CouldNotStart(AggregateException? error, RunDirectory runDir)
    {
        if (error?.GetBaseException() is not { } cause)
            return new RunResult("failed", 0, runDir.Path, null, null, "the coordinator could not start");
        var (action, described) = FailurePolicy.Classify(cause);
        return new RunResult("failed", 0, runDir.Path, null, null, action == FailureAction.StopBadInput ? described : cause.Message,
            BadInput: action == FailureAction.StopBadInput);
    }

    /// <summary>
    /// colm.telemetry.file when this node is the run's only one; with several, each writes its own
    /// file named after its port (telemetry-node-PORT.jsonl), since the run folder is shared.
    /// </summary>
    private string TelemetryFile(ColmSettings settings)
    {
        var nodes = Akka.Cluster.Cluster.Get(Context.System).State.Members.Count(m =>
            m.HasRole(ClusterSettings.CoordinatorRole) || m.HasRole(ClusterSettings.TrainerRole));
        return nodes <= 1 ? settings.Telemetry.File : $"telemetry-node-{_address[(_address.LastIndexOf(':') + 1)..]}.jsonl";
    }

    private void EndActiveRun(string why)
    {
        if (_run is null) return;
        _log.Info("run {0}: stopping on this node: {1}", _run.Id, why);
        var run = _run;
        _run = null;
        Context.Unwatch(run.Client);
        // Wake trainers blocked in a collective first, so their threads can finish and the actors stop.
        run.DataPlane?.AbortAll("run " + run.Id + " ended: " + why);
        foreach (var child in run.Children) Context.Stop(child);
        // Sockets, meters and exporters go once the actors using them have had time to stop.
        _ending.Add(run);
        var self = Self;
        Context.System.Scheduler.Advanced.ScheduleOnce(TimeSpan.FromSeconds(2), () => self.Tell(new RunStopped(run.Id)));
    }

    private sealed record RunStopped(string RunId);

    private void OnRunStopped(RunStopped m)
    {
        foreach (var run in _ending.Where(r => r.Id == m.RunId).ToArray())
        {
            run.Dispose();
            _ending.Remove(run);
        }
    }

    /// <summary>What this node holds for the run in progress.</summary>
    private sealed class ActiveRun(string id, IActorRef client) : IDisposable
    {
        private readonly List<IDisposable> _owned = new();

        public string Id { get; } = id;

        public IActorRef Client { get; } = client;

        public List<IActorRef> Children { get; } = new();

        public IDataPlane? DataPlane { get; set; }

        public T Own<T>(T disposable)
            where T : IDisposable
        {
            _owned.Add(disposable);
            return disposable;
        }

        public void Dispose()
        {
            for (int i = _owned.Count - 1; i >= 0; i--)
            {
                try
                {
                    _owned[i].Dispose();
                }
                catch (Exception)
                {
                    // Best effort: the run is over; one failing disposal must not keep the others open.
                }
            }
            _owned.Clear();
        }
    }
}

/// <summary>Forwards the coordinator's progress to the client that submitted the run.</summary>
public sealed class ClientObserver(IActorRef client, string runId) : IRunObserver
{
    public void OnStep(StepReport report) => client.Tell(new RunStepReported(runId, report));

    public void OnEvaluation(EvalReport report) => client.Tell(new RunEvaluated(runId, report));

    public void OnNotice(string message) => client.Tell(new RunNotice(runId, message));
}
