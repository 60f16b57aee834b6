using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using CoLM.Cluster.Coordination;
using CoLM.Cluster.Runs;
using CoLM.Training;

namespace CoLM.Cluster.Actors;

/// <summary>
/// The run's coordinator, a cluster singleton, as a thin shell over <see cref="RunStateMachine"/>:
/// it turns what arrives (trainers' replies, timers, cluster membership) into the machine's
/// events, and carries the machine's outputs out: messages to trainers, timers, checkpoint files,
/// and records for the <see cref="RunRecorder"/>. Everything the run decides is in the machine.
/// </summary>
public sealed class CoordinatorActor : ReceiveActor, IWithTimers
{
    private const string PhaseTimerKey = "phase-timeout";
    private const string RestartGraceTimerKey = "restart-grace";

    private readonly CoordinatorContext _ctx;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly RunStateMachine _machine;
    private readonly RunRecorder _recorder;
    private readonly CheckpointStore _checkpoints;
    // The newest incarnation of each trainer; a rank is mapped to its trainer through the machine's state.
    private readonly Dictionary<TrainerKey, IActorRef> _trainers = [];

    public CoordinatorActor(CoordinatorContext ctx)
    {
        _ctx = ctx;
        try
        {
            var definition = new RunDefinition(ctx.Settings, ctx.Data, ctx.Run.Path, ctx.Run.CheckpointsPath, ctx.ResumeFrom,
                TrainerReplica.SketchWidth(ctx.Settings));
            _machine = new RunStateMachine(definition, RunStateMachine.Begin(definition));
            _checkpoints = new CheckpointStore(ctx.Run, ctx.Settings.Train.KeepCheckpoints);
            _recorder = new RunRecorder(ctx);
        }
        catch (Exception e)
        {
            // A coordinator that cannot start would leave the singleton silently absent: end the run instead.
            ctx.Completion.TrySetException(e);
            throw;
        }

        Receive<RegisterTrainer>(m =>
        {
            var key = new TrainerKey(m.Node, m.LocalIndex);
            _trainers[key] = m.Trainer;
            Context.Watch(m.Trainer);
            Apply(_machine.Handle(new TrainerJoined(key, m.DataEndpoint, m.Incarnation)));
        });
        Receive<TrainerRestarted>(m =>
        {
            var key = new TrainerKey(m.Node, m.LocalIndex);
            _trainers[key] = m.Trainer;
            Apply(_machine.Handle(new TrainerReplaced(key, m.Reason)));
        });
        Receive<IRunEvent>(e => Apply(_machine.Handle(e)));
        Receive<Terminated>(m =>
        {
            // Only the newest incarnation of a trainer counts; an older one (a node restarted on its address) is long gone.
            TrainerKey? key = _trainers.FirstOrDefault(x => x.Value.Equals(m.ActorRef)) is { Value: not null } found ? found.Key : null;
            if (key is null) return;
            Apply(_machine.Handle(new TrainerStopped(key, m.ActorRef.Path.ToString(), m.AddressTerminated)));
        });
        Receive<ClusterEvent.UnreachableMember>(m => Apply(_machine.Handle(new NodeLost(m.Member.Address.ToString(), "became unreachable", m.Member.UniqueAddress.Uid))));
        Receive<ClusterEvent.MemberRemoved>(m => Apply(_machine.Handle(new NodeLost(m.Member.Address.ToString(), "left the cluster", m.Member.UniqueAddress.Uid))));
        Receive<ClusterEvent.IMemberEvent>(_ => { });
        Receive<ClusterEvent.CurrentClusterState>(_ => { });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(CoordinatorContext ctx) => Akka.Actor.Props.Create(() => new CoordinatorActor(ctx));

    protected override void PreStart()
    {
        Apply(_machine.Start());
        Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
            typeof(ClusterEvent.UnreachableMember), typeof(ClusterEvent.MemberRemoved));
    }

    protected override void PostStop()
    {
        Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
        _recorder.Dispose();
    }

    private void Apply(IReadOnlyList<IRunOutput> outputs)
    {
        foreach (var output in outputs)
        {
            switch (output)
            {
                case SendToTrainer m:
                    _trainers[m.Trainer].Tell(m.Message);
                    break;
                case ArmPhaseTimer m:
                    Timers.StartSingleTimer(PhaseTimerKey, m.Timeout, m.After);
                    break;
                case CancelPhaseTimer:
                    Timers.Cancel(PhaseTimerKey);
                    break;
                case ArmRestartGrace m:
                    Timers.StartSingleTimer(RestartGraceTimerKey, m.Expiry, m.After);
                    break;
                case CancelRestartGrace:
                    Timers.Cancel(RestartGraceTimerKey);
                    break;
                case PrepareCheckpoint m:
                    CheckpointStore.Prepare(m.Partial);
                    break;
                case CompleteCheckpoint m:
                    var written = _checkpoints.Complete(m.Partial, m.State, m.Normalizer, _ctx.ResolvedConfig);
                    Apply(_machine.Handle(new CheckpointWritten(written)));
                    break;
                case Logged m:
                    Log(m.Level, m.Message);
                    break;
                case PhaseChanged m:
                    if (m.From != m.To) _log.Info("[{0} -> {1}] step {2} generation {3}", m.From, m.To, m.Step, m.Generation);
                    _recorder.Record(m);
                    break;
                default:
                    _recorder.Record(output);
                    break;
            }
        }
    }

    private void Log(RunLogLevel level, string message)
    {
        switch (level)
        {
            case RunLogLevel.Debug: _log.Debug(message); break;
            case RunLogLevel.Info: _log.Info(message); break;
            case RunLogLevel.Warning: _log.Warning(message); break;
            default: _log.Error(message); break;
        }
    }

    /// <summary>
    /// What the shell itself throws (a checkpoint it cannot write, a metrics file it cannot append
    /// to) ends the run with its cause. Left to Akka, the singleton manager would restart the
    /// coordinator, which would then wait for trainers that registered long ago and fail after the
    /// phase timeout with a message about registration.
    /// </summary>
    protected override bool AroundReceive(Receive receive, object message)
    {
        try
        {
            return base.AroundReceive(receive, message);
        }
        catch (Exception e)
        {
            Apply(_machine.Handle(RunStateMachine.Faulted(e, message)));
            return true;
        }
    }
}
