using System.Collections.Immutable;
using CoLM.Cluster.Actors;
using CoLM.Cluster.Configuration;
using CoLM.Cluster.Coordination;
using CoLM.Cluster.Hosting;
using CoLM.Cluster.Runs;
using CoLM.Training;

namespace CoLM.Cluster.Tests;

/// <summary>
/// Drives a <see cref="RunStateMachine"/> by events alone: stand-in trainers answer each message
/// with what a replica would report (its step and a checksum that follows it), no tensors and no
/// actors. A test can hold back, drop or replace replies, and inject any event.
/// </summary>
public sealed class RunMachineDriver
{
    public static readonly string[] Tiny =
    [
        "colm.model.base=random", "colm.model.dim=32", "colm.model.layers=2", "colm.model.heads=2", "colm.model.hidden-dim=64",
        "colm.model.lora.rank=4", "colm.model.lora.alpha=8",
        "colm.data.synthetic.train-examples=400", "colm.data.heldout-per-source=4",
        "colm.selection.pool=16", "colm.selection.budget=8", "colm.selection.probes=4",
        "colm.train.trainers=2", "colm.train.steps=3", "colm.train.eval-every=0", "colm.train.checkpoint-every=0",
        "colm.train.checksum-every=1", "colm.telemetry.exporter=none",
    ];

    private readonly Queue<IRunEvent> _pending = new();
    // Stand-in replicas by trainer, not rank: a membership change re-deals the ranks.
    private readonly Dictionary<TrainerKey, (long Step, ulong Checksum)> _replicas = [];
    private readonly HashSet<TrainerKey> _lostWhileReplying = [];

    public RunMachineDriver(RunDefinition definition, RunState? state = null)
    {
        Definition = definition;
        Machine = new RunStateMachine(definition, state ?? RunStateMachine.Begin(definition));
        Outputs.AddRange(Machine.Start());
    }

    public static RunDefinition Define(params string[] extra)
    {
        var settings = SettingsReader.Read(RunPlan.Layer(null, [], [.. Tiny, .. extra]));
        var run = Path.Combine(Path.GetTempPath(), "colm-machine-" + Guid.NewGuid().ToString("N")[..8]);
        return new RunDefinition(settings, RunPlan.LoadData(settings), run, Path.Combine(run, "checkpoints"), null, TrainerReplica.SketchWidth(settings));
    }

    public RunDefinition Definition { get; }

    public RunStateMachine Machine { get; }

    public RunState State => Machine.State;

    /// <summary>Every output so far, in order.</summary>
    public List<IRunOutput> Outputs { get; } = [];

    /// <summary>Decides what a stand-in trainer does with a message: answer (the default), or return null to stay silent.</summary>
    public Func<int, IClusterMessage, IRunEvent?, IRunEvent?> Reply { get; set; } = (_, _, answer) => answer;

    /// <summary>Stop pumping when this returns true for an output just produced.</summary>
    public Func<IRunOutput, bool> PauseWhen { get; set; } = _ => false;

    /// <summary>Every trainer of the run registers, all on node-a (or one per node: node-0, node-1, ... when <paramref name="nodePerTrainer"/>).</summary>
    public void RegisterAll(bool nodePerTrainer = false)
    {
        for (int i = 0; i < Definition.Settings.Train.Trainers; i++)
            Post(nodePerTrainer
                ? new TrainerJoined(new TrainerKey($"node-{i}", 0), $"node-{i}:1", Incarnation: 1)
                : new TrainerJoined(new TrainerKey("node-a", i), "", Incarnation: 1));
    }

    public void Post(IRunEvent e) => _pending.Enqueue(e);

    /// <summary>Delivers queued events, and the stand-in trainers' replies they cause, until none is left or a pause.</summary>
    public IReadOnlyList<IRunOutput> Pump()
    {
        var produced = new List<IRunOutput>();
        while (_pending.TryDequeue(out var e))
        {
            bool pause = false;
            foreach (var output in Machine.Handle(e))
            {
                produced.Add(output);
                Outputs.Add(output);
                Carry(output);
                pause |= PauseWhen(output);
            }
            if (pause) return produced;
        }
        return produced;
    }

    public IRunEvent? Answer(SendToTrainer sent)
    {
        var (rank, trainer, message) = (sent.Rank, sent.Trainer, sent.Message);
        var (step, checksum) = _replicas.GetValueOrDefault(trainer, (0, Checksum(0)));
        switch (message)
        {
            case Synchronise m:
                var source = m.CheckpointFile is not null ? (State.LastCheckpoint?.Step ?? 0, Checksum(State.LastCheckpoint?.Step ?? 0))
                    : _replicas.GetValueOrDefault(State.Ranks[m.Root].Key, (State.Step, Checksum(State.Step)));
                _replicas[trainer] = source;
                return new Synchronised(m.Generation, rank, source.Item1, source.Item2, Definition.SketchWidth);
            case InspectReplica m:
                return new ReplicaInspected(m.Generation, rank, _replicas.ContainsKey(trainer), step, checksum);
            case AbortGeneration:
                return null;
            case PoolAssignment m:
                int k = m.Probes;
                return new Sketches(m.Generation, m.Step, rank, m.Ids, [.. m.Ids.Select(id => (float)(id % 7))],
                    [.. m.Ids.SelectMany(id => Enumerable.Range(0, k).Select(j => (float)Math.Sin(id * 31 + j)))], [], TimeSpan.FromMilliseconds(3));
            case TrainAssignment m:
                _replicas[trainer] = (m.Step, Checksum(m.Step));
                return new StepDone(m.Generation, m.Step, rank,
                    new TrainOutcome(m.Weights.Sum(), m.Ids.Length, TimeSpan.FromMilliseconds(5), TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(1),
                        m.WantChecksum ? Checksum(m.Step) : null));
            case EvalAssignment m:
                return new EvalDone(m.Generation, m.Step, rank, m.Ids, new EvalOutcome([.. m.Ids.Select(_ => 1.5f - 0.1f * step)], [.. m.Ids.Select(id => id % 2 == 0)]));
            case SaveState m:
                return m.Background ? new StateCopied(m.Generation, m.Step, rank) : new StateSaved(m.Generation, m.Step, rank);
            default:
                throw new InvalidOperationException($"no stand-in answer for {message.GetType().Name}");
        }
    }

    /// <summary>Takes over <paramref name="other"/>'s stand-in trainers: their replicas and the replies still on their way.</summary>
    public void TakeTrainersOf(RunMachineDriver other)
    {
        foreach (var (rank, replica) in other._replicas) _replicas[rank] = replica;
        foreach (var e in other._pending) _pending.Enqueue(e);
    }

    /// <summary>What was sent to trainers, as JSON, for comparing two runs message by message.</summary>
    public string SentJson() => string.Join("\n", Outputs.OfType<SendToTrainer>()
        .Select(s => $"{s.Rank} {s.Message.GetType().Name} {System.Text.Json.JsonSerializer.Serialize(s.Message, s.Message.GetType())}"));

    /// <summary>Forgets rank <paramref name="rank"/>'s replica, as a supervisor restart does.</summary>
    public void LoseReplica(int rank)
    {
        var trainer = State.Ranks[rank].Key;
        _replicas.Remove(trainer);
        _lostWhileReplying.Add(trainer);
    }

    /// <summary>A new process took <paramref name="trainer"/>'s place: it holds no replica until synchronised.</summary>
    public void Restarted(TrainerKey trainer) => _replicas.Remove(trainer);

    /// <summary>What the stand-in replica of <paramref name="trainer"/> holds: its completed step and checksum.</summary>
    public (long Step, ulong Checksum)? ReplicaOf(TrainerKey trainer) => _replicas.TryGetValue(trainer, out var r) ? r : null;

    public static ulong Checksum(long step) => 0x9E3779B97F4A7C15UL * (ulong)(step + 1);

    private void Carry(IRunOutput output)
    {
        switch (output)
        {
            case SendToTrainer m:
                // A replaced or withheld answer leaves the stand-in replica as it was; one the test
                // lost while deciding (LoseReplica) stays lost.
                if (Gone.Contains(m.Trainer)) break; // its process is dead: nothing answers
                bool had = _replicas.TryGetValue(m.Trainer, out var before);
                var answer = Answer(m);
                bool changed = _replicas.TryGetValue(m.Trainer, out var after);
                if (had) _replicas[m.Trainer] = before;
                else _replicas.Remove(m.Trainer);
                _lostWhileReplying.Clear();
                var reply = Reply(m.Rank, m.Message, answer);
                if (ReferenceEquals(reply, answer) && changed && !_lostWhileReplying.Contains(m.Trainer)) _replicas[m.Trainer] = after;
                if (reply is not null) _pending.Enqueue(reply);
                // A background checkpoint's files are written right after the copy.
                if (reply is StateCopied copied) _pending.Enqueue(new StateSaved(copied.Generation, copied.Step, copied.Rank));
                break;
            case SealCheckpoint m:
                _pending.Enqueue(new CheckpointWritten(new CheckpointPaths(Path.Combine(Definition.CheckpointsPath, $"step-{m.Partial.Step:D6}"), m.Partial.Step)));
                break;
            case CompleteCheckpoint m:
                var sealedFolder = Path.Combine(Definition.CheckpointsPath, $"step-{m.Partial.Step:D6}");
                _pending.Enqueue(new CheckpointWritten(new CheckpointPaths(sealedFolder, m.Partial.Step)));
                break;
        }
    }

    /// <summary>Trainers whose process is dead: messages to them go unanswered.</summary>
    public HashSet<TrainerKey> Gone { get; } = [];

    public T Single<T>() where T : IRunOutput => Assert.Single(Outputs.OfType<T>());

    public ImmutableArray<T> All<T>() where T : IRunOutput => [.. Outputs.OfType<T>()];
}
