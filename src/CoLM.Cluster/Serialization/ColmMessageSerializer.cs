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
/// fields in declaration order (<see cref="MessageLayout"/> derives it from the record, so a field
/// is declared once). Numbers are binary (floats bit for bit, NaN and infinities
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

    /// <summary>
    /// The registry: each cluster message and its manifest (a short name that stays when a type is
    /// renamed). The layout of each follows from its record declaration (<see cref="MessageLayout"/>).
    /// </summary>
    private static readonly Entry[] Table =
    [
        // coordinator -> trainer, each inside a FromCoordinator
        Of<FromCoordinator>("from-coordinator"),
        Of<PoolAssignment>("pool"),
        Of<TrainAssignment>("train"),
        Of<EvalAssignment>("eval"),
        Of<Synchronise>("sync"),
        Of<InspectReplica>("inspect"),
        Of<AbortGeneration>("abort"),
        Of<ReplayLastReply>("replay"),
        Of<RegisterAgain>("register-again"),
        Of<SaveState>("save"),

        // trainer -> coordinator
        Of<RegisterTrainer>("register"),
        Of<TrainerRestarted>("restarted"),
        Of<Sketches>("sketches"),
        Of<StepDone>("done"),
        Of<StepFailed>("failed"),
        Of<ReplicaInspected>("inspected"),
        Of<EvalDone>("evaluated"),
        Of<Synchronised>("synced"),
        Of<StateSaved>("saved"),
        Of<StateCopied>("copied"),
        Of<TrainerHeartbeat>("heartbeat"),
        Of<StopRequested>("stop"),

        // client <-> node agent
        Of<DescribeNode>("describe"),
        Of<NodeDescription>("node"),
        Of<SubmitRun>("submit"),
        Of<RunAccepted>("accepted"),
        Of<RunRefused>("refused"),
        Of<EndRun>("end"),
        Of<ShutdownNode>("shutdown"),

        // coordinator -> submitting client
        Of<RunStepReported>("step"),
        Of<RunEvaluated>("eval-report"),
        Of<RunNotice>("notice"),
        Of<RunEnded>("ended"),
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
            var writer = new PayloadWriter((int)Math.Min(64 + entry.Layout.SizeHint(obj), Array.MaxLength));
            writer.WriteByte(LayoutVersion);
            entry.Layout.Write(this, writer, obj, prefix: "");
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
            var message = entry.Layout.Read(this, reader, prefix: "");
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

    // ---- A message inside another (an envelope's): its manifest, then its fields in place.

    internal void WriteEnclosed(PayloadWriter writer, object message, string field)
    {
        var entry = Find(message);
        writer.WriteString(entry.Manifest, field + " manifest");
        entry.Layout.Write(this, writer, message, field + ".");
    }

    internal object ReadEnclosed(PayloadReader reader, string field)
    {
        string manifest = reader.ReadString(field + " manifest");
        if (!ByManifest.TryGetValue(manifest, out var entry)) throw new MalformedPayloadException($"{field}: unknown manifest '{manifest}'");
        if (entry.Type == typeof(FromCoordinator)) throw new MalformedPayloadException($"{field}: an envelope inside an envelope");
        return entry.Layout.Read(this, reader, field + ".");
    }

    // ---- Actor refs travel as their full path (with this node's address and the actor's uid)
    // and are resolved back through this node's provider. A null ref is written as a null path.

    internal void WriteActorRef(PayloadWriter writer, IActorRef? actorRef) =>
        writer.WriteNullableString(actorRef is null ? null : Akka.Serialization.Serialization.SerializedActorPath(actorRef));

    internal IActorRef ReadActorRef(PayloadReader reader, string field)
    {
        string? path = reader.ReadNullableString(field);
        return path is null ? null! : system.Provider.ResolveActorRef(path);
    }

    // ---- The table's rows.

    private sealed record Entry(Type Type, string Manifest, MessageLayout Layout);

    private static Entry Of<T>(string manifest) where T : class, IClusterMessage => new(typeof(T), manifest, MessageLayout.Of(typeof(T)));
}
