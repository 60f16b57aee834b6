using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Configuration;
using CoLM.Cluster.Actors;

namespace CoLM.Cluster.Serialization;

/// <summary>
/// Bound to System.Object (and put in place of Akka's reflection-based JSON serializer) in
/// hocon/akka.conf, so a type with no serializer of its own is refused on the way out and a
/// JSON payload naming an arbitrary type is refused on the way in. Akka's remoting logs the
/// refusal and drops that one message; the association stays up.
/// </summary>
public sealed class RefusingSerializer : Akka.Serialization.Serializer
{
    /// <summary>Next to <see cref="ColmMessageSerializer.Id"/>; only ever seen in a refusal.</summary>
    public const int Id = 7412;

    public RefusingSerializer(ExtendedActorSystem system) : base(system)
    {
    }

    /// <summary>
    /// Akka passes a serializer its `akka.actor.serialization-settings.NAME` block when there is
    /// one, and Akka's reference.conf has one for `json`, which this serializer replaces.
    /// </summary>
    public RefusingSerializer(ExtendedActorSystem system, Config settings) : base(system) => _ = settings;

    public override int Identifier => Id;

    public override bool IncludeManifest => false;

    public override byte[] ToBinary(object obj) =>
        throw new SerializationException(
            $"no serializer is registered for {obj?.GetType().FullName ?? "null"}; messages between nodes must implement {nameof(IClusterMessage)} " +
            $"and have an entry in {nameof(ColmMessageSerializer)}");

    public override object FromBinary(byte[] bytes, Type type) =>
        throw new SerializationException(
            $"refusing to deserialize {type?.FullName ?? "a payload"} with a fallback serializer; only {nameof(IClusterMessage)} types " +
            $"(through {nameof(ColmMessageSerializer)}) and Akka's own messages are accepted between nodes");
}
