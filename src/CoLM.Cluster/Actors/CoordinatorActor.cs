using System.Collections.Immutable;
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
    // Set when this coordinator continues a run whose coordinator's node was lost.
    private readonly RunJournalEntry? _takeover;
    // 0 for the run's first coordinator, one more for each that took over; every message to a trainer carries it.
    private readonly long _epoch;
    private bool _superseded;

    public CoordinatorActor(CoordinatorContext ctx)
    {
        _ctx = ctx;
        try
        {
            var definition = new RunDefinition(ctx.Settings, ctx.Data, ctx.Run.Path, ctx.Run.CheckpointsPath, ctx.ResumeFrom,
                TrainerReplica.SketchWidth(ctx.Settings));
            _takeover = ctx.RunId.Length > 0 ? ClaimTakeover(ctx) : null;
            _epoch = _takeover is { } previous ? previous.Epoch + 1 : 0;
            var state = _takeover is { } journal ? RunStateCodec.FromBytes(journal.State) : RunStateMachine.Begin(definition);
            _machine = new RunStateMachine(definition, state);
            _checkpoints = new CheckpointStore(ctx.Run, ctx.Settings.Train.KeepCheckpoints);
            ctx.Run.TotalSteps = ctx.Settings.Train.Steps;
            _recorder = new RunRecorder(ctx, takingOver: _takeover is not null);
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
            // A watch set on a trainer whose node was already removed may not say so (a coordinator that took over).
            bool nodeGone = m.AddressTerminated || !IsMember(m.ActorRef.Path.Address);
            Apply(_machine.Handle(new TrainerStopped(key, m.ActorRef.Path.ToString(), nodeGone)));
        });
        Receive<ClusterEvent.UnreachableMember>(m => Apply(_machine.Handle(new NodeLost(m.Member.Address.ToString(), "became unreachable", m.Member.UniqueAddress.Uid))));
        Receive<ClusterEvent.MemberRemoved>(m => Apply(_machine.Handle(new NodeLost(m.Member.Address.ToString(), "left the cluster", m.Member.UniqueAddress.Uid))));
        Receive<ClusterEvent.ReachableMember>(m =>
        {
            // Lost while unreachable but never downed: its trainers are alive and may be admitted again.
            var node = m.Member.Address.ToString();
            foreach (var (key, trainer) in _trainers)
                if (key.Node == node && !_machine.State.Registered.Any(s => s.Key == key)) Send(trainer, RegisterAgain.Instance);
        });
        Receive<ClusterEvent.IMemberEvent>(_ => { });
        Receive<ClusterEvent.CurrentClusterState>(_ => { });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    private bool IsMember(Address node)
    {
        var state = Akka.Cluster.Cluster.Get(Context.System).State;
        return state.Members.Any(m => m.Address.Equals(node) && m.Status == MemberStatus.Up) && !state.Unreachable.Any(m => m.Address.Equals(node));
    }

    public static Props Props(CoordinatorContext ctx) => Akka.Actor.Props.Create(() => new CoordinatorActor(ctx));

    /// <summary>
    /// The journal of this submission, when a predecessor wrote one: claims the next epoch first
    /// and reads the journal after, so the entry read is the last one the predecessor acted on
    /// (<see cref="RunJournal"/> says why).
    /// </summary>
    private static RunJournalEntry? ClaimTakeover(CoordinatorContext ctx)
    {
        if (RunJournal.Read(ctx.Run, ctx.RunId) is not { } seen) return null;
        RunJournal.Claim(ctx.Run, ctx.RunId, seen.Epoch + 1);
        return RunJournal.Read(ctx.Run, ctx.RunId);
    }

    private void Send(IActorRef trainer, IClusterMessage message) => trainer.Tell(new FromCoordinator(_epoch, message));

    protected override void PreStart()
    {
        if (_takeover is { } journal) TakeOver(journal);
        else Apply(_machine.Start());
        Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
            typeof(ClusterEvent.UnreachableMember), typeof(ClusterEvent.ReachableMember), typeof(ClusterEvent.MemberRemoved));
    }

    /// <summary>
    /// Continues the run from its journal after the previous coordinator's node was lost: finds
    /// the trainers again, sends the last batch of messages again (a trainer that already answered
    /// one answers from its cache), asks every trainer for its last reply (the predecessor may have
    /// received it and died before acting on it), and treats trainers whose node is gone as lost.
    /// </summary>
    private void TakeOver(RunJournalEntry journal)
    {
        var state = _machine.State;
        string notice = $"coordinator taking over the run on {Akka.Cluster.Cluster.Get(Context.System).SelfAddress} (epoch {_epoch}): step {state.Step} committed, " +
                        $"{state.Phase} of step {state.Step + 1}, generation {state.Generation}";
        _log.Warning(notice);
        _recorder.Record(new Noticed(notice));
        var provider = ((ExtendedActorSystem)Context.System).Provider;
        foreach (var t in journal.Trainers)
        {
            var trainer = provider.ResolveActorRef(t.ActorPath);
            _trainers[new TrainerKey(t.Node, t.LocalIndex)] = trainer;
            Context.Watch(trainer);
        }
        Apply(_machine.Start());
        foreach (var m in journal.LastSent)
        {
            if (_trainers.TryGetValue(new TrainerKey(m.Node, m.LocalIndex), out var trainer))
                Send(trainer, (IClusterMessage)Context.System.Serialization.Deserialize(m.Bytes, m.SerializerId, m.Manifest));
        }
        foreach (var trainer in _trainers.Values) Send(trainer, ReplayLastReply.Instance);
        // A node removed before this coordinator started sends no event: compare with the members now.
        var members = Akka.Cluster.Cluster.Get(Context.System).State.Members
            .Where(m => m.Status is MemberStatus.Up or MemberStatus.Joining or MemberStatus.WeaklyUp or MemberStatus.Leaving)
            .Select(m => (m.Address.ToString(), (long)m.UniqueAddress.Uid)).ToHashSet();
        foreach (var seat in _machine.State.Registered.Where(s => !members.Contains((s.Key.Node, s.Incarnation))).DistinctBy(s => s.Key.Node))
            Apply(_machine.Handle(new NodeLost(seat.Key.Node, "was removed from the cluster", seat.Incarnation)));
    }

    protected override void PostStop()
    {
        Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
        _recorder.Dispose();
    }

    private void Apply(IReadOnlyList<IRunOutput> outputs)
    {
        var sends = new List<SendToTrainer>();
        foreach (var output in outputs)
        {
            switch (output)
            {
                case SendToTrainer m:
                    sends.Add(m);
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
                    Apply(_machine.Handle(new CheckpointWritten(CompleteCheckpoint(m))));
                    break;
                case WriteCheckpointPart m:
                    CheckpointStore.WritePart(m.Partial, m.State, m.Normalizer, _ctx.ResolvedConfig);
                    break;
                case SealCheckpoint m:
                    Apply(_machine.Handle(new CheckpointWritten(SealedBefore(m.Partial) ?? _checkpoints.Seal(m.Partial))));
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
        if (sends.Count == 0 || _superseded) return;
        // Write-ahead: what is about to be sent is on shared storage first, so a coordinator that
        // takes over after this one's node is lost continues from exactly here.
        if (_ctx.RunId.Length > 0 && HasStandby())
        {
            // Checked before the write too, so a superseded coordinator does not overwrite its successor's entries.
            if (StopIfSuperseded()) return;
            Journal(sends);
            if (StopIfSuperseded()) return;
        }
        foreach (var m in sends) Send(_trainers[m.Trainer], m.Message);
    }

    /// <summary>Taken over while cut off (frozen, partitioned): the successor goes on; this one must not send another word.</summary>
    private bool StopIfSuperseded()
    {
        if (!RunJournal.IsSuperseded(_ctx.Run, _ctx.RunId, _epoch)) return false;
        _superseded = true;
        _log.Error($"coordinator of epoch {_epoch} on {Akka.Cluster.Cluster.Get(Context.System).SelfAddress}: a coordinator of a newer epoch " +
                   "has taken the run over; this one stops sending");
        Context.Stop(Self);
        return true;
    }

    /// <summary>
    /// Whether another coordinator-role node could take over: without one (one process, or a single
    /// coordinator node) the journal would never be read, so it is not written. Checked per batch:
    /// a standby that joins later is covered from the next batch on.
    /// </summary>
    private bool HasStandby()
    {
        var cluster = Akka.Cluster.Cluster.Get(Context.System);
        return cluster.State.Members.Any(m => m.Status == MemberStatus.Up && m.HasRole(CoLM.Training.Settings.ClusterSettings.CoordinatorRole) && !m.Address.Equals(cluster.SelfAddress));
    }

    private void Journal(List<SendToTrainer> sends)
    {
        var serialization = Context.System.Serialization;
        var sent = sends.Select(m =>
        {
            var serializer = serialization.FindSerializerFor(m.Message);
            return new JournaledMessage(m.Trainer.Node, m.Trainer.LocalIndex, serializer.Identifier,
                Akka.Serialization.Serialization.ManifestFor(serializer, m.Message), serializer.ToBinary(m.Message));
        }).ToImmutableArray();
        var trainers = _trainers.Select(t => new JournaledTrainer(t.Key.Node, t.Key.LocalIndex,
            Akka.Serialization.Serialization.SerializedActorPath(t.Value))).ToImmutableArray();
        // Once a step's coreset is chosen its sketches are not needed again: a successor does not carry them.
        var state = _machine.State.InProgress is { Selection: not null } inProgress
            ? _machine.State with { InProgress = inProgress with { Sketches = ImmutableSortedDictionary<int, Sketches>.Empty } }
            : _machine.State;
        RunJournal.Write(_ctx.Run, new RunJournalEntry(_ctx.RunId, _epoch, RunStateCodec.ToBytes(state), sent, trainers));
    }

    /// <summary>
    /// Seals the partial checkpoint. A coordinator that took over may find it sealed already by its
    /// predecessor (lost after the rename, before its next journal entry): that checkpoint is used as it is.
    /// </summary>
    private CheckpointPaths CompleteCheckpoint(CompleteCheckpoint m) =>
        SealedBefore(m.Partial) ?? _checkpoints.Complete(m.Partial, m.State, m.Normalizer, _ctx.ResolvedConfig);

    private CheckpointPaths? SealedBefore(CheckpointPaths partial) =>
        !Directory.Exists(partial.Directory) && CheckpointStore.All(_ctx.Run).FirstOrDefault(c => c.Step == partial.Step) is { } sealedBefore
        && CheckpointVerifier.Verify(sealedBefore).Problem is null
            ? sealedBefore
            : null;

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
