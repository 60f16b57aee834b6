using System.Collections.Frozen;
using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Serialization;
using CoLM.Cluster.Actors;
using CoLM.Cluster.Runs;
using CoLM.Training;

namespace CoLM.Cluster.Serialization;

/// <summary>
/// The one serializer for messages between colm nodes (everything implementing
/// <see cref="IClusterMessage"/>; hocon/akka.conf binds the interface here). Each registered type
/// has a short string manifest and a fixed little-endian binary layout: a version byte, then the
/// fields in declaration order. Numbers are binary (floats bit for bit, NaN and infinities
/// included), numeric arrays are copied in one block, actor refs travel as their serialized
/// path, and dictionaries are written in ordinal key order so equal messages give equal bytes.
/// The table below is the registry: a type or manifest not in it is refused, never guessed at.
/// </summary>
public sealed class ColmMessageSerializer : SerializerWithStringManifest
{
    /// <summary>
    /// Akka.NET reserves identifiers 0-40 for its own serializers (those loaded here use 1-36) and
    /// plugins tend to pick small numbers just above that; 7411 is well clear of both. It must
    /// stay fixed: it travels with every message, so changing it would make nodes of different
    /// builds unable to read each other.
    /// </summary>
    public const int Id = 7411;

    /// <summary>First byte of every payload; bump it (and read the old value too) when a layout changes.</summary>
    public const byte LayoutVersion = 2;

    private static readonly Entry[] Table =
    [
        // coordinator -> trainer
        Of<PoolAssignment>("pool",
            (_, w, m) => { w.WriteInt64(m.Generation); w.WriteInt64(m.Step); w.WriteInt32s(m.Ids); w.WriteInt32((int)m.Kind); w.WriteInt64(m.ProbeSeed); w.WriteInt32(m.Probes); },
            (_, r) => new PoolAssignment(r.ReadInt64("Generation"), r.ReadInt64("Step"), r.ReadInt32s("Ids"), r.ReadEnum<SketchKind>("Kind"),
                r.ReadInt64("ProbeSeed"), r.ReadInt32("Probes")),
            m => 64 + Bytes(m.Ids.IsDefault ? 0 : m.Ids.Length)),
        Of<TrainAssignment>("train",
            (_, w, m) => { w.WriteInt64(m.Generation); w.WriteInt64(m.Step); w.WriteInt32s(m.Ids); w.WriteFloats(m.Weights); w.WriteDouble(m.GlobalWeight); w.WriteBool(m.WantChecksum); },
            (_, r) => new TrainAssignment(r.ReadInt64("Generation"), r.ReadInt64("Step"), r.ReadInt32s("Ids"), r.ReadFloatsImmutable("Weights"),
                r.ReadDouble("GlobalWeight"), r.ReadBool("WantChecksum")),
            m => 64 + Bytes(m.Ids.IsDefault ? 0 : m.Ids.Length) + Bytes(m.Weights.IsDefault ? 0 : m.Weights.Length)),
        Of<EvalAssignment>("eval",
            (_, w, m) => { w.WriteInt64(m.Generation); w.WriteInt64(m.Step); w.WriteInt32s(m.Ids); },
            (_, r) => new EvalAssignment(r.ReadInt64("Generation"), r.ReadInt64("Step"), r.ReadInt32s("Ids")),
            m => 32 + Bytes(m.Ids.IsDefault ? 0 : m.Ids.Length)),
        Of<Synchronise>("sync",
            (_, w, m) => { w.WriteInt64(m.Generation); w.WriteInt32(m.Rank); w.WriteInt32(m.Root); w.WriteNullableString(m.CheckpointFile); w.WriteStrings(m.Peers); },
            (_, r) => new Synchronise(r.ReadInt64("Generation"), r.ReadInt32("Rank"), r.ReadInt32("Root"), r.ReadNullableString("CheckpointFile"),
                r.ReadStrings("Peers"))),
        Of<InspectReplica>("inspect",
            (_, w, m) => { w.WriteInt64(m.Generation); w.WriteInt32(m.Rank); },
            (_, r) => new InspectReplica(r.ReadInt64("Generation"), r.ReadInt32("Rank"))),
        Of<SaveState>("save",
            (_, w, m) => { w.WriteInt64(m.Generation); w.WriteInt64(m.Step); w.WriteString(m.Path, "Path"); w.WriteString(m.AdapterDirectory, "AdapterDirectory"); },
            (_, r) => new SaveState(r.ReadInt64("Generation"), r.ReadInt64("Step"), r.ReadString("Path"), r.ReadString("AdapterDirectory"))),

        // trainer -> coordinator
        Of<RegisterTrainer>("register",
            (s, w, m) => { s.WriteActorRef(w, m.Trainer); w.WriteString(m.Node, "Node"); w.WriteInt32(m.LocalIndex); w.WriteString(m.DataEndpoint, "DataEndpoint"); },
            (s, r) => new RegisterTrainer(s.ReadActorRef(r, "Trainer"), r.ReadString("Node"), r.ReadInt32("LocalIndex"), r.ReadString("DataEndpoint"))),
        Of<TrainerRestarted>("restarted",
            (s, w, m) => { s.WriteActorRef(w, m.Trainer); w.WriteString(m.Node, "Node"); w.WriteInt32(m.LocalIndex); w.WriteString(m.Reason, "Reason"); },
            (s, r) => new TrainerRestarted(s.ReadActorRef(r, "Trainer"), r.ReadString("Node"), r.ReadInt32("LocalIndex"), r.ReadString("Reason"))),
        Of<Sketches>("sketches",
            (_, w, m) =>
            {
                w.WriteInt64(m.Generation); w.WriteInt64(m.Step); w.WriteInt32(m.Rank);
                w.WriteInt32s(m.Ids); w.WriteFloats(m.Losses); w.WriteFloats(m.Coefficients); w.WriteFloats(m.Features);
                w.WriteTimeSpan(m.Elapsed);
            },
            (_, r) => new Sketches(r.ReadInt64("Generation"), r.ReadInt64("Step"), r.ReadInt32("Rank"), r.ReadInt32s("Ids"),
                r.ReadFloatsImmutable("Losses"), r.ReadFloatsImmutable("Coefficients"), r.ReadFloatsImmutable("Features"), r.ReadTimeSpan("Elapsed")),
            m => 64 + Bytes(m.Ids.IsDefault ? 0 : m.Ids.Length) + Bytes(m.Losses.IsDefault ? 0 : m.Losses.Length)
                 + Bytes(m.Coefficients.IsDefault ? 0 : m.Coefficients.Length) + Bytes(m.Features.IsDefault ? 0 : m.Features.Length)),
        Of<StepDone>("done",
            (_, w, m) => { w.WriteInt64(m.Generation); w.WriteInt64(m.Step); w.WriteInt32(m.Rank); WriteTrainOutcome(w, m.Outcome); },
            (_, r) => new StepDone(r.ReadInt64("Generation"), r.ReadInt64("Step"), r.ReadInt32("Rank"), ReadTrainOutcome(r))),
        Of<StepFailed>("failed",
            (_, w, m) => { w.WriteInt64(m.Generation); w.WriteInt64(m.Step); w.WriteInt32(m.Rank); w.WriteString(m.Reason, "Reason"); w.WriteBool(m.Fatal); w.WriteInt32s(m.NotArrived); },
            (_, r) => new StepFailed(r.ReadInt64("Generation"), r.ReadInt64("Step"), r.ReadInt32("Rank"), r.ReadString("Reason"), r.ReadBool("Fatal"),
                r.ReadInt32s("NotArrived"))),
        Of<ReplicaInspected>("inspected",
            (_, w, m) => { w.WriteInt64(m.Generation); w.WriteInt32(m.Rank); w.WriteBool(m.HasState); w.WriteInt64(m.CompletedSteps); w.WriteUInt64(m.Checksum); },
            (_, r) => new ReplicaInspected(r.ReadInt64("Generation"), r.ReadInt32("Rank"), r.ReadBool("HasState"), r.ReadInt64("CompletedSteps"),
                r.ReadUInt64("Checksum"))),
        Of<EvalDone>("evaluated",
            (_, w, m) => { w.WriteInt64(m.Generation); w.WriteInt64(m.Step); w.WriteInt32(m.Rank); w.WriteInt32s(m.Ids); WriteEvalOutcome(w, m.Outcome); },
            (_, r) => new EvalDone(r.ReadInt64("Generation"), r.ReadInt64("Step"), r.ReadInt32("Rank"), r.ReadInt32s("Ids"), ReadEvalOutcome(r)),
            m => 64 + Bytes(m.Ids.IsDefault ? 0 : m.Ids.Length) + Bytes(m.Outcome?.Losses?.Length ?? 0) + (m.Outcome?.ExactMatch?.Length ?? 0)),
        Of<Synchronised>("synced",
            (_, w, m) => { w.WriteInt64(m.Generation); w.WriteInt32(m.Rank); w.WriteInt64(m.CompletedSteps); w.WriteUInt64(m.Checksum); w.WriteInt32(m.SketchDimension); },
            (_, r) => new Synchronised(r.ReadInt64("Generation"), r.ReadInt32("Rank"), r.ReadInt64("CompletedSteps"), r.ReadUInt64("Checksum"),
                r.ReadInt32("SketchDimension"))),
        Of<StateSaved>("saved",
            (_, w, m) => { w.WriteInt64(m.Generation); w.WriteInt64(m.Step); w.WriteInt32(m.Rank); },
            (_, r) => new StateSaved(r.ReadInt64("Generation"), r.ReadInt64("Step"), r.ReadInt32("Rank"))),
        Of<StopRequested>("stop",
            (_, w, m) => w.WriteString(m.Reason, "Reason"),
            (_, r) => new StopRequested(r.ReadString("Reason"))),

        // client <-> node agent
        Of<DescribeNode>("describe",
            (_, _, _) => { },
            (_, _) => DescribeNode.Instance),
        Of<NodeDescription>("node",
            (_, w, m) => { w.WriteString(m.Node, "Node"); w.WriteStrings(m.Roles); w.WriteInt32(m.Trainers); w.WriteString(m.Devices, "Devices"); w.WriteNullableString(m.ActiveRun); },
            (_, r) => new NodeDescription(r.ReadString("Node"), r.ReadStrings("Roles"), r.ReadInt32("Trainers"), r.ReadString("Devices"),
                r.ReadNullableString("ActiveRun"))),
        Of<SubmitRun>("submit",
            (s, w, m) =>
            {
                w.WriteString(m.RunId, "RunId"); w.WriteString(m.Config, "Config"); w.WriteString(m.RunDirectory, "RunDirectory");
                w.WriteNullableString(m.ResumeCheckpoint); s.WriteActorRef(w, m.Client);
            },
            (s, r) => new SubmitRun(r.ReadString("RunId"), r.ReadString("Config"), r.ReadString("RunDirectory"), r.ReadNullableString("ResumeCheckpoint"),
                s.ReadActorRef(r, "Client")),
            m => 64 + 3L * (m.Config?.Length ?? 0)),
        Of<RunAccepted>("accepted",
            (_, w, m) => { w.WriteString(m.RunId, "RunId"); w.WriteString(m.Node, "Node"); w.WriteInt32(m.Trainers); },
            (_, r) => new RunAccepted(r.ReadString("RunId"), r.ReadString("Node"), r.ReadInt32("Trainers"))),
        Of<RunRefused>("refused",
            (_, w, m) => { w.WriteString(m.RunId, "RunId"); w.WriteString(m.Node, "Node"); w.WriteString(m.Reason, "Reason"); },
            (_, r) => new RunRefused(r.ReadString("RunId"), r.ReadString("Node"), r.ReadString("Reason"))),
        Of<EndRun>("end",
            (_, w, m) => w.WriteString(m.RunId, "RunId"),
            (_, r) => new EndRun(r.ReadString("RunId"))),
        Of<ShutdownNode>("shutdown",
            (_, w, m) => w.WriteString(m.Reason, "Reason"),
            (_, r) => new ShutdownNode(r.ReadString("Reason"))),

        // coordinator -> submitting client
        Of<RunStepReported>("step",
            (_, w, m) => { w.WriteString(m.RunId, "RunId"); WriteStepReport(w, m.Report); },
            (_, r) => new RunStepReported(r.ReadString("RunId"), ReadStepReport(r))),
        Of<RunEvaluated>("eval-report",
            (_, w, m) => { w.WriteString(m.RunId, "RunId"); WriteEvalReport(w, m.Report, "Report"); },
            (_, r) => new RunEvaluated(r.ReadString("RunId"), ReadEvalReport(r, "Report"))),
        Of<RunNotice>("notice",
            (_, w, m) => { w.WriteString(m.RunId, "RunId"); w.WriteString(m.Message, "Message"); },
            (_, r) => new RunNotice(r.ReadString("RunId"), r.ReadString("Message"))),
        Of<RunEnded>("ended",
            (_, w, m) => { w.WriteString(m.RunId, "RunId"); WriteRunResult(w, m.Result); },
            (_, r) => new RunEnded(r.ReadString("RunId"), ReadRunResult(r))),
    ];

    private static readonly FrozenDictionary<Type, Entry> ByType = Table.ToFrozenDictionary(e => e.Type);
    private static readonly FrozenDictionary<string, Entry> ByManifest = Table.ToFrozenDictionary(e => e.Manifest, StringComparer.Ordinal);

    /// <summary>Every registered message type and its manifest.</summary>
    public static IReadOnlyDictionary<Type, string> Manifests { get; } = Table.ToFrozenDictionary(e => e.Type, e => e.Manifest);

    public ColmMessageSerializer(ExtendedActorSystem system) : base(system)
    {
    }

    public override int Identifier => Id;

    public override string Manifest(object o) => Find(o).Manifest;

    public override byte[] ToBinary(object obj)
    {
        var entry = Find(obj);
        try
        {
            var writer = new PayloadWriter(entry.SizeHint(obj));
            writer.WriteByte(LayoutVersion);
            entry.Write(this, writer, obj);
            return writer.ToArray();
        }
        catch (Exception e) when (e is not SerializationException)
        {
            throw new SerializationException($"cannot serialize {obj.GetType().FullName} (manifest '{entry.Manifest}'): {e.Message}", e);
        }
    }

    public override object FromBinary(byte[] bytes, string manifest)
    {
        if (!ByManifest.TryGetValue(manifest ?? "", out var entry))
            throw new SerializationException(
                $"unknown manifest '{manifest}' for {nameof(ColmMessageSerializer)} (id {Id}): the sender has a message type this node does not know");
        ArgumentNullException.ThrowIfNull(bytes);
        try
        {
            var reader = new PayloadReader(bytes);
            byte version = reader.ReadByte("layout version");
            if (version != LayoutVersion)
                throw new MalformedPayloadException($"layout version {version}, this node reads version {LayoutVersion} (nodes of different colm builds?)");
            var message = entry.Read(this, reader);
            reader.ExpectEnd();
            return message;
        }
        catch (Exception e) when (e is not SerializationException)
        {
            throw new SerializationException(
                $"cannot read {entry.Type.Name} (manifest '{manifest}', {bytes.Length} bytes): {e.Message}", e);
        }
    }

    private static Entry Find(object o)
    {
        ArgumentNullException.ThrowIfNull(o);
        return ByType.TryGetValue(o.GetType(), out var entry)
            ? entry
            : throw new SerializationException(
                $"{o.GetType().FullName} has no entry in {nameof(ColmMessageSerializer)}'s table; every {nameof(IClusterMessage)} needs one");
    }

    // ---- Actor refs travel as their full path (with this node's address and the actor's uid)
    // and are resolved back through this node's provider. A null ref is written as a null path.

    private void WriteActorRef(PayloadWriter writer, IActorRef? actorRef) =>
        writer.WriteNullableString(actorRef is null ? null : Akka.Serialization.Serialization.SerializedActorPath(actorRef));

    private IActorRef ReadActorRef(PayloadReader reader, string field)
    {
        string? path = reader.ReadNullableString(field);
        return path is null ? null! : system.Provider.ResolveActorRef(path);
    }

    // ---- Nested records. Required ones are written without a presence flag (null is a sender bug);
    // optional ones (RunResult.Before / After) have one.

    private static void WriteTrainOutcome(PayloadWriter w, TrainOutcome o)
    {
        Required(o, "Outcome");
        w.WriteDouble(o.WeightedLossSum); w.WriteInt32(o.Examples);
        w.WriteTimeSpan(o.Compute); w.WriteTimeSpan(o.AllReduce); w.WriteTimeSpan(o.Optimizer);
        w.WriteNullableUInt64(o.Checksum);
    }

    private static TrainOutcome ReadTrainOutcome(PayloadReader r) =>
        new(r.ReadDouble("Outcome.WeightedLossSum"), r.ReadInt32("Outcome.Examples"), r.ReadTimeSpan("Outcome.Compute"),
            r.ReadTimeSpan("Outcome.AllReduce"), r.ReadTimeSpan("Outcome.Optimizer"), r.ReadNullableUInt64("Outcome.Checksum"));

    private static void WriteEvalOutcome(PayloadWriter w, EvalOutcome o)
    {
        Required(o, "Outcome");
        w.WriteFloats(o.Losses);
        w.WriteBools(o.ExactMatch);
    }

    private static EvalOutcome ReadEvalOutcome(PayloadReader r) =>
        new(r.ReadFloats("Outcome.Losses")!, r.ReadBools("Outcome.ExactMatch")!);

    private static void WriteStepReport(PayloadWriter w, StepReport s)
    {
        Required(s, "Report");
        w.WriteInt64(s.Step); w.WriteInt64(s.TotalSteps); w.WriteDouble(s.Loss); w.WriteDouble(s.LearningRate);
        w.WriteInt32(s.Samples); w.WriteDouble(s.SamplesPerSecond); w.WriteTimeSpan(s.StepTime); w.WriteTimeSpan(s.Elapsed);
        w.WriteDictionary(s.PhaseSeconds, (x, v) => x.WriteDouble(v), "PhaseSeconds");
        w.WriteDictionary(s.SelectedPerSource, (x, v) => x.WriteInt32(v), "SelectedPerSource");
    }

    private static StepReport ReadStepReport(PayloadReader r) =>
        new(r.ReadInt64("Report.Step"), r.ReadInt64("Report.TotalSteps"), r.ReadDouble("Report.Loss"), r.ReadDouble("Report.LearningRate"),
            r.ReadInt32("Report.Samples"), r.ReadDouble("Report.SamplesPerSecond"), r.ReadTimeSpan("Report.StepTime"), r.ReadTimeSpan("Report.Elapsed"),
            r.ReadDictionary("Report.PhaseSeconds", (x, f) => x.ReadDouble(f))!,
            r.ReadDictionary("Report.SelectedPerSource", (x, f) => x.ReadInt32(f))!);

    private static void WriteEvalReport(PayloadWriter w, EvalReport e, string field)
    {
        Required(e, field);
        w.WriteInt64(e.Step);
        w.WriteDictionary(e.Sources, (x, s) =>
        {
            Required(s, field + ".Sources value");
            x.WriteInt32(s.Examples); x.WriteDouble(s.Accuracy); x.WriteDouble(s.Loss);
        }, field + ".Sources");
        w.WriteDouble(e.MeanAccuracy); w.WriteDouble(e.MeanLoss);
    }

    private static EvalReport ReadEvalReport(PayloadReader r, string field) =>
        new(r.ReadInt64(field + ".Step"),
            r.ReadDictionary(field + ".Sources", (x, f) => new SourceScore(x.ReadInt32(f + ".Examples"), x.ReadDouble(f + ".Accuracy"), x.ReadDouble(f + ".Loss")))!,
            r.ReadDouble(field + ".MeanAccuracy"), r.ReadDouble(field + ".MeanLoss"));

    private static void WriteOptionalEvalReport(PayloadWriter w, EvalReport? e, string field)
    {
        w.WriteBool(e is not null);
        if (e is not null) WriteEvalReport(w, e, field);
    }

    private static EvalReport? ReadOptionalEvalReport(PayloadReader r, string field) =>
        r.ReadBool(field + " presence") ? ReadEvalReport(r, field) : null;

    private static void WriteRunResult(PayloadWriter w, RunResult x)
    {
        Required(x, "Result");
        w.WriteString(x.State, "Result.State"); w.WriteInt64(x.Step); w.WriteString(x.RunDirectory, "Result.RunDirectory");
        WriteOptionalEvalReport(w, x.Before, "Result.Before"); WriteOptionalEvalReport(w, x.After, "Result.After");
        w.WriteNullableString(x.Error); w.WriteBool(x.BadInput);
    }

    private static RunResult ReadRunResult(PayloadReader r) =>
        new(r.ReadString("Result.State"), r.ReadInt64("Result.Step"), r.ReadString("Result.RunDirectory"),
            ReadOptionalEvalReport(r, "Result.Before"), ReadOptionalEvalReport(r, "Result.After"), r.ReadNullableString("Result.Error"),
            r.ReadBool("Result.BadInput"));

    private static void Required(object? value, string field)
    {
        if (value is null) throw new ArgumentNullException(field, $"{field} is null but is not optional");
    }

    /// <summary>Bytes of a block of <paramref name="count"/> 4-byte elements with its count.</summary>
    private static long Bytes(int count) => 4 + 4L * count;

    // ---- The table's rows.

    private sealed record Entry(
        Type Type, string Manifest,
        Action<ColmMessageSerializer, PayloadWriter, object> Write,
        Func<ColmMessageSerializer, PayloadReader, object> Read,
        Func<object, int> SizeHint);

    private static Entry Of<T>(string manifest,
        Action<ColmMessageSerializer, PayloadWriter, T> write,
        Func<ColmMessageSerializer, PayloadReader, T> read,
        Func<T, long>? sizeHint = null) where T : class, IClusterMessage =>
        new(typeof(T), manifest,
            (s, w, o) => write(s, w, (T)o),
            (s, r) => read(s, r),
            sizeHint is null ? _ => 128 : o => (int)Math.Min(sizeHint((T)o), Array.MaxLength));
}
