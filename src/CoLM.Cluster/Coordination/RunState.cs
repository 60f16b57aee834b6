using System.Collections.Immutable;
using System.Text.Json;
using System.Text.Json.Serialization;
using CoLM.Cluster.Actors;
using CoLM.Cluster.Runs;
using CoLM.Data;
using CoLM.Selection;

namespace CoLM.Cluster.Coordination;

/// <summary>What the coordinator is waiting for; every change is recorded as [old -> new].</summary>
public enum RunPhase
{
    WaitingForTrainers, // until colm.train.trainers have registered
    Inspecting,         // a new generation (a trainer restarted, a member was lost or admitted): every replica reports its step and checksum, to choose the source
    Synchronising,      // replicas made identical (start, resume, or a new generation)
    Sketching,          // trainers compute zeroth-order sketches of their share of the pool
    Training,           // trainers step on their share of the coreset
    Evaluating,         // held-out evaluation, split across trainers
    Checkpointing,      // rank 0 writes its replica state, then the coordinator completes the checkpoint
    Recovering,         // a trainer restarted or a member was lost: waiting for the others' outstanding replies
    AwaitingMembers,    // fewer trainers than colm.train.min-trainers: waiting for nodes to join (colm.cluster.membership-wait)
    Finished,           // completed, stopped or failed; nothing more happens
}

/// <summary>The work the run does between synchronisations, in order; replaces "what to do next" callbacks.</summary>
public enum Duty
{
    Step,       // the next optimizer step, or the end of the run when none is left
    Evaluate,   // held-out evaluation at the committed step
    Checkpoint, // a checkpoint of the committed step
}

/// <summary>A trainer's identity before it has a rank: its node and its device there.</summary>
public readonly record struct TrainerKey(string Node, int LocalIndex)
{
    public override string ToString() => $"trainer {LocalIndex} on {Node}";
}

/// <summary>
/// A registered trainer, where its data-plane peer connects ("" when every trainer shares this
/// process), and its node process's unique id (<paramref name="Incarnation"/>).
/// </summary>
public sealed record TrainerSeat(TrainerKey Key, string DataEndpoint, long Incarnation = 0);

/// <summary>
/// The step in progress: the pool drawn, the coordinator's sampler and normaliser as the step
/// leaves them (committed only when every trainer reports the step done, so a retried step draws
/// the same pool and makes the same selection), the selection, and the replies so far.
/// </summary>
public sealed record StepInProgress(
    long Step,
    ImmutableArray<int> Pool,
    SamplerState SamplerAfter,
    NormalizerState? NormalizerAfter,
    ImmutableSortedDictionary<int, Sketches> Sketches,
    CoresetSelection? Selection,
    ImmutableSortedDictionary<int, StepDone> Done);

/// <summary>
/// The run's whole state as one immutable value: <see cref="RunStateMachine"/> maps (state, event)
/// to (state, outputs). <see cref="RunStateCodec"/> turns it into bytes and back exactly, so a
/// standby coordinator can take over from the last state it was sent.
/// <para><paramref name="Step"/> is always the last step every trainer completed (the committed
/// step); the step in progress is <see cref="StepInProgress.Step"/> = Step + 1.</para>
/// </summary>
public sealed record RunState(
    RunPhase Phase,
    long Generation,
    long Step,
    ImmutableArray<TrainerSeat> Registered,
    ImmutableArray<TrainerSeat> Ranks,
    ImmutableSortedSet<int> Awaiting,
    Duty? Current,
    ImmutableArray<Duty> Agenda,
    SamplerState Sampler,
    NormalizerState? Normalizer,
    StepInProgress? InProgress,
    ImmutableSortedDictionary<int, Synchronised> Synced,
    ImmutableSortedDictionary<int, ReplicaInspected> Inspected,
    ImmutableSortedDictionary<int, EvalDone> Evals,
    CommittedChecksum? KnownChecksum,
    ImmutableSortedSet<int> NotArrived,
    ImmutableSortedSet<int> ReportedFailure,
    string? StopReason,
    EvalReport? Before,
    EvalReport? Last,
    CheckpointPaths? LastCheckpoint,
    bool Resumed,
    bool StoppedShort = false, // the stop was forced (too few trainers), not asked for: the run ends unfinished
    StepInProgress? Abandoned = null, // a step given up in training after a member was lost: some replicas may have applied it
    long? PendingCheckpoint = null) // the step of a background checkpoint whose files are still being written
{
    /// <summary>A new run.</summary>
    public static RunState New() => new(
        RunPhase.WaitingForTrainers, Generation: 0, Step: 0, [], [], [], Current: null, [], new SamplerState(0, 0), Normalizer: null,
        InProgress: null, ImmutableSortedDictionary<int, Synchronised>.Empty,
        ImmutableSortedDictionary<int, ReplicaInspected>.Empty, ImmutableSortedDictionary<int, EvalDone>.Empty, KnownChecksum: null, [], [], StopReason: null, Before: null, Last: null,
        LastCheckpoint: null, Resumed: false);

    /// <summary>A run resumed from <paramref name="checkpoint"/>: its coordinator state, normaliser and baseline evaluation.</summary>
    public static RunState ResumedFrom(CheckpointPaths checkpoint, CoordinatorCheckpoint state, NormalizerState normalizer, EvalReport baseline) =>
        New() with
        {
            Step = state.Step,
            Sampler = CheckpointStore.Sampler(state),
            Normalizer = normalizer,
            Before = baseline,
            LastCheckpoint = checkpoint,
            Resumed = true,
        };

    /// <summary>The ranks dealt out so far, 0 .. World - 1.</summary>
    public IEnumerable<int> AllRanks => Enumerable.Range(0, Ranks.Length);
}

/// <summary>The replicas' checksum at a committed step: evidence for choosing a recovery source.</summary>
public sealed record CommittedChecksum(long Step, ulong Checksum);

/// <summary>
/// The run state as bytes (UTF-8 JSON; floats written shortest-exact, NaN and infinities by name;
/// float arrays, such as the normaliser's history at a model's width, as base64 of their bytes) and back.
/// </summary>
public static class RunStateCodec
{
    private static readonly JsonSerializerOptions Options = new()
    {
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter(), new FloatArrayAsBase64() },
        IncludeFields = false,
    };

    /// <summary>A float[] as base64 of its little-endian bytes: exact, and about 3x smaller and far faster than decimal text.</summary>
    private sealed class FloatArrayAsBase64 : JsonConverter<float[]>
    {
        public override float[] Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(reader.GetBytesFromBase64()).ToArray();

        public override void Write(Utf8JsonWriter writer, float[] value, JsonSerializerOptions options) =>
            writer.WriteBase64StringValue(System.Runtime.InteropServices.MemoryMarshal.AsBytes(value.AsSpan()));
    }

    public static byte[] ToBytes(RunState state) => JsonSerializer.SerializeToUtf8Bytes(state, Options);

    public static RunState FromBytes(ReadOnlySpan<byte> bytes) =>
        JsonSerializer.Deserialize<RunState>(bytes, Options) ?? throw new JsonException("run state: null");
}
