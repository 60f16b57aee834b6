using System.Collections.Immutable;
using Akka.Actor;
using Akka.Event;
using CoLM.Cluster.Runs;
using CoLM.Collectives;
using CoLM.Data;
using CoLM.Training;
using CoLM.Training.Settings;

namespace CoLM.Cluster.Actors;

// ---- Protocol: coordinator -> trainer. Every message carries the generation (bumped on each
// recovery) and the step, so a late message from an abandoned attempt is dropped, never applied;
// and travels inside a FromCoordinator envelope with the coordinator's epoch.

/// <summary>
/// Every message a coordinator sends a trainer, with the coordinator's epoch (0 for the run's
/// first coordinator, one more for each that took over). A trainer refuses a message from an
/// epoch older than one it has seen: a coordinator that was taken over from but still runs
/// (frozen, cut off) can never have a trainer do work its successor also hands out.
/// </summary>
public sealed record FromCoordinator(long Epoch, IClusterMessage Message) : IClusterMessage;

/// <summary>Compute what the selection method needs about these pool examples (COLM.md step 4).</summary>
public sealed record PoolAssignment(long Generation, long Step, ImmutableArray<int> Ids, SketchKind Kind, long ProbeSeed, int Probes) : IClusterMessage;

/// <summary>Train one step on this share of the coreset; the loss is normalised by the global weight.</summary>
public sealed record TrainAssignment(long Generation, long Step, ImmutableArray<int> Ids, ImmutableArray<float> Weights,
    double GlobalWeight, bool WantChecksum) : IClusterMessage;

/// <summary>Evaluate these held-out examples.</summary>
public sealed record EvalAssignment(long Generation, long Step, ImmutableArray<int> Ids) : IClusterMessage;

/// <summary>
/// Starts generation <paramref name="Generation"/> with this trainer as rank <paramref name="Rank"/>
/// of <paramref name="Peers"/> (every rank's data-plane endpoint, in rank order), then makes every
/// replica identical: load <paramref name="CheckpointFile"/> when given, otherwise copy rank
/// <paramref name="Root"/>'s state over the collective.
/// </summary>
public sealed record Synchronise(long Generation, int Rank, int Root, string? CheckpointFile, ImmutableArray<string> Peers) : IClusterMessage;

/// <summary>
/// Before a resynchronisation: report what the replica holds (completed step, checksum), so the
/// coordinator can choose the source replica by evidence rather than by rank number.
/// </summary>
public sealed record InspectReplica(long Generation, int Rank) : IClusterMessage;

/// <summary>
/// The coordinator abandoned generation <paramref name="Generation"/> (a member is gone): break its
/// collective so a trainer blocked in it with the lost rank returns now, not at the collective timeout.
/// </summary>
public sealed record AbortGeneration(long Generation, string Reason) : IClusterMessage;

/// <summary>
/// The coordinator lost this trainer's node (unreachable) and now sees it reachable again without
/// it having been downed: the trainer announces itself again, to be admitted like a newcomer.
/// </summary>
public sealed record RegisterAgain : IClusterMessage
{
    public static RegisterAgain Instance { get; } = new();
}

/// <summary>A coordinator that took over asks each trainer for its last reply (sent to a predecessor that may not have handled it).</summary>
public sealed record ReplayLastReply : IClusterMessage
{
    public static ReplayLastReply Instance { get; } = new();
}

/// <summary>
/// Rank 0 writes its replica state to <paramref name="Path"/> and its LoRA weights as a PEFT
/// adapter to <paramref name="AdapterDirectory"/>, answering <see cref="StateSaved"/> once both are
/// on disk. <paramref name="Background"/>: copy them in memory, answer <see cref="StateCopied"/> at
/// once (the run goes on) and write the copies on another thread, then answer StateSaved.
/// </summary>
public sealed record SaveState(long Generation, long Step, string Path, string AdapterDirectory, bool Background) : IClusterMessage;

/// <summary>
/// A thin shell around one <see cref="TrainerReplica"/>: each assignment runs on the replica's
/// own thread and its result comes back as a message, so the mailbox never blocks. While a
/// task runs, other messages are stashed: the replica is used by one task at a time.
/// </summary>
public sealed class TrainerActor : ReceiveActor, IWithUnboundedStash, IWithTimers
{
    private readonly TrainerContext _context;
    private readonly int _localIndex;
    private int _rank = -1;             // dealt out by the coordinator with each Synchronise
    private long _generation = -1;      // the generation of the last Synchronise
    private long _epoch;                // the newest coordinator epoch seen (FromCoordinator)
    private (Type Kind, long Generation, long Step)? _lastRequest;
    private object? _lastReply;         // the answer to _lastRequest, once sent
    private long? _busySince;           // when the work in progress started (a timestamp)
    private Task _writing = Task.CompletedTask; // background checkpoint writes, chained; touched only on the replica thread
    private TrainerReplica? _replica;
    private Task<TrainerReplica>? _building; // the replica being built ahead of the first Synchronise
    private ReplicaThread? _thread;

    public TrainerActor(TrainerContext context, int localIndex)
    {
        _context = context;
        _localIndex = localIndex;
        Become(Idle);
    }

    public IStash Stash { get; set; } = null!;

    public ITimerScheduler Timers { get; set; } = null!;

    private TrainerReplica Replica => _replica ?? throw new InvalidOperationException(
        $"trainer {_localIndex} on {_context.Node} got work before its first Synchronise");

    public static Props Props(TrainerContext context, int localIndex) => Akka.Actor.Props.Create(() => new TrainerActor(context, localIndex));

    protected override void PreStart()
    {
        BuildReplicaAhead();
        // Registered once built (or once the build failed, which the first Synchronise reports), so it is admitted ready to go.
        _building!.ContinueWith(_ => ReplicaBuilt.Instance, TaskScheduler.Default).PipeTo(Self);
        StartHeartbeat();
    }

    // The actor's thread stays free while its replica's thread works (or hangs), so it can say what that thread is doing.
    private void StartHeartbeat() => Timers.StartPeriodicTimer("heartbeat", HeartbeatTick.Instance, _context.Settings.Cluster.HeartbeatInterval);

    /// <summary>
    /// Builds the model on the replica thread before this trainer registers: a trainer joining a
    /// running run would otherwise make its peers wait, in the first broadcast, for as long as the
    /// build takes (0.5 s for the tiny model of the tests, far more for a real one). The thread runs one task at a time in
    /// order, so the build is done before any Synchronise runs; a failed build surfaces there.
    /// </summary>
    private void BuildReplicaAhead()
    {
        _thread ??= new ReplicaThread($"trainer-{_localIndex}");
        _building = _thread.Run(() =>
        {
            // libtorch's OpenMP thread count is a per-thread setting (only the main thread's is
            // inherited), and a node agent is not on the main thread: the replica thread, which
            // runs every libtorch call of this trainer, sets its own.
            TorchSharp.torch.set_num_threads(_context.TorchThreads);
            return new TrainerReplica(_context.Settings, _context.Data, _context.Faults);
        });
    }

    private void Register() =>
        _context.Coordinator.Tell(new RegisterTrainer(Self, _context.Node, _localIndex, _context.DataPlane.EndpointOf(_localIndex), _context.Incarnation));

    private void Heartbeat()
    {
        if (_rank < 0 || _replica is not { } replica) return;
        var (entered, completed, waiting) = replica.Progress.Read();
        string work = _lastRequest is { } request && _busySince is not null ? request.Kind.Name : "idle";
        double busy = _busySince is { } since ? System.Diagnostics.Stopwatch.GetElapsedTime(since).TotalSeconds : 0;
        _context.Coordinator.Tell(new TrainerHeartbeat(_generation, _rank, work, _lastRequest?.Step ?? 0, busy, entered, completed, waiting.TotalSeconds));
    }

    protected override void PostRestart(Exception reason)
    {
        // Peers may be blocked in an all-reduce waiting for this rank: wake them, then ask the
        // coordinator to resynchronise everyone and retry the step.
        _context.DataPlane.Abort(_localIndex, $"trainer {_localIndex} on {_context.Node} restarted after: {reason.Message}");
        BuildReplicaAhead();
        StartHeartbeat();
        _context.Coordinator.Tell(new TrainerRestarted(Self, _context.Node, _localIndex, reason.Message));
    }

    protected override void PostStop()
    {
        // Disposing the thread lets work already queued finish before the replica goes.
        _thread?.Dispose();
        _thread = null;
        _replica ??= _building is { IsCompletedSuccessfully: true } built ? built.Result : null;
        _replica?.Dispose();
        _replica = null;
    }

    private void Idle()
    {
        Receive<HeartbeatTick>(_ => Heartbeat());
        Receive<BackgroundWritten>(OnBackgroundWritten);
        Receive<RegisterAgain>(_ => Register());
        Receive<ReplicaBuilt>(_ => Register());
        Receive<AbortGeneration>(OnAbortGeneration);
        Receive<ReplayLastReply>(_ => Replay());
        Receive<PoolAssignment>(m => Run(m, m.Generation, m.Step, () =>
        {
            var sketch = Replica.Sketch(m.Ids, m.Kind, m.ProbeSeed, m.Probes);
            return new Sketches(m.Generation, m.Step, _rank, m.Ids, [.. sketch.Losses], [.. sketch.Coefficients],
                [.. sketch.Features], sketch.Elapsed);
        }));
        Receive<TrainAssignment>(m => Run(m, m.Generation, m.Step, () =>
            new StepDone(m.Generation, m.Step, _rank, Replica.Train(m.Step, m.Ids, m.Weights, m.GlobalWeight, m.WantChecksum))));
        Receive<EvalAssignment>(m => Run(m, m.Generation, m.Step, () =>
            new EvalDone(m.Generation, m.Step, _rank, m.Ids, Replica.Evaluate(m.Ids))));
        Receive<Synchronise>(m =>
        {
            _generation = m.Generation;
            Run(m, m.Generation, 0, () =>
            {
                JoinGeneration(m);
                if (m.CheckpointFile is { } file) Replica.ImportState(File.ReadAllBytes(file), file);
                else Replica.SynchroniseFrom(m.Root);
                return new Synchronised(m.Generation, _rank, Replica.CompletedSteps, Replica.Checksum(), Replica.SketchDimension);
            });
        });
        Receive<InspectReplica>(m => Run(m, m.Generation, 0, () => _replica is null
            ? new ReplicaInspected(m.Generation, m.Rank, HasState: false, CompletedSteps: -1, Checksum: 0)
            : new ReplicaInspected(m.Generation, m.Rank, HasState: true, _replica.CompletedSteps, _replica.Checksum())));
        Receive<SaveState>(m =>
        {
            var self = Self;
            Run(m, m.Generation, m.Step, () =>
            {
                var state = Replica.ExportState();
                var adapter = Replica.SnapshotAdapter();
                var saved = new StateSaved(m.Generation, m.Step, _rank);
                if (!m.Background)
                {
                    WriteCheckpointFiles(m, state, adapter);
                    return saved;
                }
                // One write at a time, in order; the replica trains on while the copies are written.
                _writing = _writing.ContinueWith(_ =>
                {
                    try
                    {
                        WriteCheckpointFiles(m, state, adapter);
                        self.Tell(new BackgroundWritten(saved, null));
                    }
                    catch (Exception e)
                    {
                        self.Tell(new BackgroundWritten(saved, e));
                    }
                }, TaskScheduler.Default);
                return new StateCopied(m.Generation, m.Step, _rank);
            });
        });
    }

    private static void WriteCheckpointFiles(SaveState m, byte[] state, AdapterSnapshot adapter)
    {
        using (adapter)
        {
            var tmp = m.Path + ".partial";
            // On disk before the rename, so the name never points at data still in the page cache.
            Runs.DurableFiles.WriteAllBytes(tmp, state);
            File.Move(tmp, m.Path, overwrite: true);
            adapter.Write(m.AdapterDirectory);
        }
    }

    private void OnBackgroundWritten(BackgroundWritten m)
    {
        if (m.Error is null)
        {
            _context.Coordinator.Tell(m.Saved);
            return;
        }
        var (action, message) = FailurePolicy.Classify(FailurePolicy.Unwrap(m.Error));
        _context.Coordinator.Tell(new StepFailed(m.Saved.Generation, m.Saved.Step, _rank, $"writing the checkpoint of step {m.Saved.Step}: {message}",
            Fatal: action == FailureAction.StopBadInput, []));
    }

    /// <summary>
    /// On the replica thread: joins the data plane's new generation (connecting to peers may take a
    /// while). After a membership change the coordinator may deal this trainer another rank.
    /// </summary>
    private void JoinGeneration(Synchronise m)
    {
        var collective = _context.DataPlane.Join(_localIndex, m.Rank, m.Generation, m.Peers);
        _rank = m.Rank;
        _replica ??= (_building ?? throw new InvalidOperationException("the replica was never built")).GetAwaiter().GetResult();
        _replica.JoinGeneration(collective);
    }

    private void Busy()
    {
        // Not stashed: the work in progress may be blocked in a collective with a rank that is gone.
        Receive<AbortGeneration>(OnAbortGeneration);
        Receive<ReplayLastReply>(_ => Replay());
        Receive<HeartbeatTick>(_ => Heartbeat());
        Receive<BackgroundWritten>(OnBackgroundWritten);
        Receive<RegisterAgain>(_ => Register());
        Receive<WorkDone>(m =>
        {
            _lastReply = m.Reply;
            _context.Coordinator.Tell(m.Reply);
            BecomeIdle();
        });
        Receive<WorkFailed>(m =>
        {
            var cause = FailurePolicy.Unwrap(m.Error);
            var (action, message) = FailurePolicy.Classify(cause);
            if (action == FailureAction.RestartAndRetry)
            {
                // This replica may be corrupt: throw so the supervisor restarts the actor with a fresh one.
                throw new TrainerFailedException(_rank, m.Step, cause);
            }
            // Not this replica's fault (a peer failed or hung, or the input is wrong): report it and let the coordinator decide.
            var notArrived = cause is CollectiveTimeoutException timeout ? timeout.MissingRanks.ToImmutableArray() : [];
            _lastReply = new StepFailed(m.Generation, m.Step, _rank, message, Fatal: action == FailureAction.StopBadInput, notArrived);
            _context.Coordinator.Tell(_lastReply);
            BecomeIdle();
        });
        ReceiveAny(_ => Stash.Stash());
    }

    /// <summary>
    /// Opens a coordinator's envelope: a message from an older epoch than one seen is refused
    /// (its coordinator was taken over from); the rest is handled as if sent bare, stash included
    /// (a stashed envelope is checked again when unstashed).
    /// </summary>
    protected override bool AroundReceive(Receive receive, object message)
    {
        if (message is FromCoordinator envelope)
        {
            if (envelope.Epoch < _epoch)
            {
                Context.GetLogger().Warning("trainer {0} on {1}: refused {2} from a coordinator of epoch {3}, taken over by epoch {4}",
                    _localIndex, _context.Node, envelope.Message.GetType().Name, envelope.Epoch, _epoch);
                return true;
            }
            _epoch = envelope.Epoch;
            message = envelope.Message;
        }
        return base.AroundReceive(receive, message);
    }

    /// <summary>A coordinator that took over asks for the reply its predecessor may have received and lost.</summary>
    private void Replay()
    {
        if (_lastReply is not null) Sender.Tell(_lastReply);
    }

    private void OnAbortGeneration(AbortGeneration m)
    {
        // Only the generation named: a newer one this trainer has already joined stays intact.
        if (m.Generation >= _generation) _context.DataPlane.Abort(_localIndex, m.Reason);
    }

    private void BecomeIdle()
    {
        _busySince = null;
        Become(Idle);
        Stash.UnstashAll();
    }

    /// <summary>
    /// A coordinator that took over sends its predecessor's last batch again: a request this
    /// trainer already answered (same kind, generation and step) is answered from the cache, never
    /// done twice. Requests arrive one at a time (others are stashed while busy), so the last one is enough.
    /// </summary>
    private void Run(object request, long generation, long step, Func<object> work)
    {
        var identity = (request.GetType(), generation, step);
        if (_lastRequest == identity)
        {
            if (_lastReply is not null) _context.Coordinator.Tell(_lastReply);
            return;
        }
        _lastRequest = identity;
        _lastReply = null;
        _busySince = System.Diagnostics.Stopwatch.GetTimestamp();
        Become(Busy);
        _thread ??= new ReplicaThread($"trainer-{_localIndex}");
        _thread.Run(work).PipeTo(Self,
            success: reply => new WorkDone(reply),
            failure: error => new WorkFailed(generation, step, error));
    }

    private sealed record WorkDone(object Reply);

    private sealed record BackgroundWritten(StateSaved Saved, Exception? Error);

    private sealed record ReplicaBuilt
    {
        public static ReplicaBuilt Instance { get; } = new();
    }

    private sealed record HeartbeatTick
    {
        public static HeartbeatTick Instance { get; } = new();
    }

    private sealed record WorkFailed(long Generation, long Step, Exception Error);
}

/// <summary>
/// What every trainer on a node shares; it outlives trainer restarts. <paramref name="Node"/> is
/// this node's cluster address and <paramref name="Incarnation"/> its process's unique id there (a
/// node restarted on the same address is another incarnation); <paramref name="TorchThreads"/> the
/// libtorch threads of each trainer.
/// </summary>
public sealed record TrainerContext(
    ColmSettings Settings, DataMixture Data, IDataPlane DataPlane, FaultInjector Faults, IActorRef Coordinator, string Node, long Incarnation,
    int TorchThreads);

public sealed class TrainerFailedException(int rank, long step, Exception cause)
    : Exception($"trainer rank {rank} failed at step {step}: {cause.Message}", cause);
