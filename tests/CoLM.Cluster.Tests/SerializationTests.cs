using System.Runtime.Serialization;
using Akka.Actor;
using CoLM.Cluster.Actors;
using CoLM.Cluster.Configuration;
using CoLM.Cluster.Serialization;

namespace CoLM.Cluster.Tests;

/// <summary>One actor system with the repo's own akka config (cluster provider, port 0), not joined.</summary>
public sealed class ActorSystemFixture : IDisposable
{
    public ActorSystemFixture()
    {
        System = ActorSystem.Create("colm", HoconSources.Defaults());
        Actor = System.ActorOf(Props.Create(() => new SilentActor()), "someone");
    }

    public ActorSystem System { get; }
    public IActorRef Actor { get; }

    public void Dispose() => System.Terminate().Wait(TimeSpan.FromSeconds(10));

    private sealed class SilentActor : ReceiveActor
    {
        public SilentActor() => ReceiveAny(_ => { });
    }
}

public sealed record NotRegistered(int Value);

public sealed record RegisteredNowhere(int Value) : IClusterMessage;

public sealed class SerializationTests(ActorSystemFixture fixture) : IClassFixture<ActorSystemFixture>
{
    private readonly ActorSystem _system = fixture.System;

    private IReadOnlyList<IClusterMessage> Samples => MessageSamples.All(fixture.Actor);

    private ColmMessageSerializer Serializer => Assert.IsType<ColmMessageSerializer>(_system.Serialization.FindSerializerFor(Samples[0]));

    [Fact]
    public void Every_cluster_message_type_has_a_manifest_and_a_sample()
    {
        var types = MessageSamples.ClusterMessageTypes()
            .Where(t => t.Assembly == typeof(IClusterMessage).Assembly)
            .ToList();
        Assert.True(types.Count >= 25, $"found only {types.Count} IClusterMessage types");
        var sampled = Samples.Select(m => m.GetType()).ToHashSet();
        foreach (var type in types)
        {
            Assert.True(ColmMessageSerializer.Manifests.ContainsKey(type), $"{type.Name} has no entry in ColmMessageSerializer's table");
            Assert.True(sampled.Contains(type), $"{type.Name} has no generated sample");
        }
        Assert.Equal(types.ToHashSet(), ColmMessageSerializer.Manifests.Keys.ToHashSet());
        var manifests = ColmMessageSerializer.Manifests.Values.ToList();
        Assert.Equal(manifests.Count, manifests.Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public void Akka_picks_the_colm_serializer_for_every_cluster_message()
    {
        foreach (var message in Samples)
        {
            var serializer = _system.Serialization.FindSerializerFor(message);
            Assert.True(serializer is ColmMessageSerializer, $"{message.GetType().Name} goes to {serializer.GetType().Name}");
            Assert.Equal(ColmMessageSerializer.Id, serializer.Identifier);
        }
    }

    [Fact]
    public void Every_sample_round_trips_field_for_field_and_to_the_same_bytes()
    {
        var serializer = Serializer;
        foreach (var message in Samples)
        {
            string manifest = serializer.Manifest(message);
            byte[] bytes = serializer.ToBinary(message);
            Assert.Equal(ColmMessageSerializer.LayoutVersion, bytes[0]);
            var back = serializer.FromBinary(bytes, manifest);
            MessageSamples.AssertSameContents(message, back, message.GetType().Name);
            Assert.Equal(bytes, serializer.ToBinary(back));
        }
    }

    [Fact]
    public void Round_trip_through_akkas_serialization_api_resolves_actor_refs_to_equal_refs()
    {
        var message = new RegisterTrainer(fixture.Actor, "node", 1, "endpoint", 7);
        var serialization = _system.Serialization;
        byte[] bytes = serialization.Serialize(message);
        var serializer = serialization.FindSerializerFor(message);
        var back = Assert.IsType<RegisterTrainer>(serialization.Deserialize(bytes, serializer.Identifier, Akka.Serialization.Serialization.ManifestFor(serializer, message)));
        Assert.Equal(fixture.Actor, back.Trainer);
        Assert.Equal(fixture.Actor.Path.Uid, back.Trainer.Path.Uid);
    }

    [Fact]
    public void DescribeNode_reads_back_as_the_singleton()
    {
        var serializer = Serializer;
        var back = serializer.FromBinary(serializer.ToBinary(DescribeNode.Instance), serializer.Manifest(DescribeNode.Instance));
        Assert.Same(DescribeNode.Instance, back);
    }

    [Fact]
    public void Dictionaries_are_written_in_key_order_so_equal_reports_give_equal_bytes()
    {
        var serializer = Serializer;
        var a = new Dictionary<string, double> { ["b"] = 1, ["a"] = 2, ["c"] = 3 };
        var b = new Dictionary<string, double> { ["c"] = 3, ["a"] = 2, ["b"] = 1 };
        var counts = new Dictionary<string, int>();
        RunStepReported Report(Dictionary<string, double> phases) =>
            new("r", new Runs.StepReport(1, 2, 0.5, 1e-3, 4, 8, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2), phases, counts));
        Assert.Equal(serializer.ToBinary(Report(a)), serializer.ToBinary(Report(b)));
    }

    [Fact]
    public void A_sketch_of_64_examples_by_16_probes_is_its_numbers_plus_a_small_header()
    {
        var sketches = MessageSamples.Sketches(64, 16);
        byte[] bytes = Serializer.ToBinary(sketches);
        int numbers = 64 * 4 + 64 * 4 + 64 * 16 * 4;
        Assert.InRange(bytes.Length, numbers, numbers + 64);
    }

    [Fact]
    public void Frames_and_socket_buffers_hold_an_exact_feature_sketch()
    {
        var tcp = _system.Settings.Config.GetConfig("akka.remote.dot-netty.tcp");
        Assert.Equal(16L << 20, tcp.GetByteSize("maximum-frame-size"));
        Assert.Equal(16L << 20, tcp.GetByteSize("send-buffer-size"));
        Assert.Equal(16L << 20, tcp.GetByteSize("receive-buffer-size"));
    }

    [Fact]
    public void An_unregistered_type_is_refused_with_a_clear_message()
    {
        var serializer = _system.Serialization.FindSerializerFor(new NotRegistered(1));
        Assert.IsType<RefusingSerializer>(serializer);
        var e = Assert.Throws<SerializationException>(() => serializer.ToBinary(new NotRegistered(1)));
        Assert.Contains(typeof(NotRegistered).FullName!, e.Message);
        Assert.Contains("IClusterMessage", e.Message);

        // Akka's reflection-based JSON serializer is gone for incoming payloads too.
        Assert.Throws<SerializationException>(() => _system.Serialization.Deserialize([1, 2, 3], 1, typeof(NotRegistered).AssemblyQualifiedName));
        Assert.Throws<SerializationException>(() => _system.Serialization.Deserialize([1, 2, 3], RefusingSerializer.Id, typeof(NotRegistered)));
    }

    [Fact]
    public void An_envelope_inside_an_envelope_or_around_an_unknown_manifest_is_refused()
    {
        var serializer = Serializer;
        var inner = serializer.ToBinary(new FromCoordinator(3, RegisterAgain.Instance));
        Assert.IsType<RegisterAgain>(((FromCoordinator)serializer.FromBinary(inner, "from-coordinator")).Message);
        // Written by hand (little-endian; a string is its UTF-8 length, then its bytes): the serializer never writes an envelope in an envelope.
        var e = Assert.Throws<SerializationException>(() => serializer.FromBinary(
            Payload(w => { w.Write(4L); Text(w, "from-coordinator"); w.Write(3L); Text(w, "register-again"); }), "from-coordinator"));
        Assert.Contains("an envelope inside an envelope", e.Message);
        e = Assert.Throws<SerializationException>(() => serializer.FromBinary(Payload(w => { w.Write(4L); Text(w, "no-such-message"); }), "from-coordinator"));
        Assert.Contains("unknown manifest 'no-such-message'", e.Message);
    }

    private static byte[] Payload(Action<BinaryWriter> fields)
    {
        using var bytes = new MemoryStream();
        using (var w = new BinaryWriter(bytes))
        {
            w.Write(ColmMessageSerializer.LayoutVersion);
            fields(w);
        }
        return bytes.ToArray();
    }

    private static void Text(BinaryWriter w, string value)
    {
        w.Write(global::System.Text.Encoding.UTF8.GetByteCount(value));
        w.Write(global::System.Text.Encoding.UTF8.GetBytes(value));
    }

    [Fact]
    public void A_cluster_message_missing_from_the_table_is_refused_by_name()
    {
        var serializer = Serializer;
        var e = Assert.Throws<SerializationException>(() => serializer.ToBinary(new RegisteredNowhere(1)));
        Assert.Contains(nameof(RegisteredNowhere), e.Message);
        e = Assert.Throws<SerializationException>(() => serializer.Manifest(new RegisteredNowhere(1)));
        Assert.Contains(nameof(RegisteredNowhere), e.Message);
        e = Assert.Throws<SerializationException>(() => serializer.FromBinary([ColmMessageSerializer.LayoutVersion], "no-such-manifest"));
        Assert.Contains("no-such-manifest", e.Message);
    }

    [Fact]
    public void A_truncated_sketch_fails_naming_the_message_type()
    {
        var serializer = Serializer;
        var sketches = MessageSamples.Sketches(64, 16);
        byte[] bytes = serializer.ToBinary(sketches);
        var e = Assert.Throws<SerializationException>(() => serializer.FromBinary(bytes[..(bytes.Length / 2)], serializer.Manifest(sketches)));
        Assert.Contains("Sketches", e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void Every_prefix_and_every_padded_or_reversioned_payload_fails_as_a_serialization_error()
    {
        var serializer = Serializer;
        foreach (var message in Samples)
        {
            string manifest = serializer.Manifest(message);
            byte[] bytes = serializer.ToBinary(message);
            string name = message.GetType().Name;
            for (int cut = 0; cut < bytes.Length; cut++)
            {
                var e = Assert.Throws<SerializationException>(() => serializer.FromBinary(bytes[..cut], manifest));
                Assert.Contains(name, e.Message);
            }
            var padded = Assert.Throws<SerializationException>(() => serializer.FromBinary([.. bytes, 0], manifest));
            Assert.Contains("unread", padded.Message);
            byte[] reversioned = [.. bytes];
            reversioned[0] = 99;
            var version = Assert.Throws<SerializationException>(() => serializer.FromBinary(reversioned, manifest));
            Assert.Contains("version 99", version.Message);
        }
    }

    [Fact]
    public void A_corrupt_length_is_reported_before_anything_is_allocated()
    {
        var serializer = Serializer;
        var message = new EvalAssignment(1, 2, [1, 2, 3]);
        byte[] bytes = serializer.ToBinary(message);
        // version (1) + generation (8) + step (8), then the ids' count
        BitConverter.TryWriteBytes(bytes.AsSpan(17, 4), int.MaxValue);
        var e = Assert.Throws<SerializationException>(() => serializer.FromBinary(bytes, serializer.Manifest(message)));
        Assert.Contains("EvalAssignment", e.Message);
        Assert.Contains("Ids", e.Message);
    }

    [Fact]
    public void Null_in_a_required_field_is_refused_on_the_way_out()
    {
        var e = Assert.Throws<SerializationException>(() => Serializer.ToBinary(new StopRequested(null!)));
        Assert.Contains("StopRequested", e.Message);
        Assert.Contains("Reason", e.Message);
    }

    /// <summary>
    /// Akka's own messages that cross the wire in a cluster with a singleton must keep their own
    /// serializers: the System.Object binding to the refusing serializer is only for our types.
    /// </summary>
    [Theory]
    [InlineData("Akka.Actor.ActorSelectionMessage, Akka")]
    [InlineData("Akka.Actor.Identify, Akka")]
    [InlineData("Akka.Actor.ActorIdentity, Akka")]
    [InlineData("Akka.Actor.PoisonPill, Akka")]
    [InlineData("Akka.Actor.Status+Failure, Akka")]
    [InlineData("Akka.Actor.Status+Success, Akka")]
    [InlineData("Akka.Dispatch.SysMsg.Watch, Akka")]
    [InlineData("Akka.Dispatch.SysMsg.Unwatch, Akka")]
    [InlineData("Akka.Dispatch.SysMsg.DeathWatchNotification, Akka")]
    [InlineData("Akka.Remote.RemoteWatcher+Heartbeat, Akka.Remote")]
    [InlineData("Akka.Remote.RemoteWatcher+HeartbeatRsp, Akka.Remote")]
    [InlineData("Akka.Cluster.GossipEnvelope, Akka.Cluster")]
    [InlineData("Akka.Cluster.GossipStatus, Akka.Cluster")]
    [InlineData("Akka.Cluster.InternalClusterAction+InitJoin, Akka.Cluster")]
    [InlineData("Akka.Cluster.InternalClusterAction+InitJoinAck, Akka.Cluster")]
    [InlineData("Akka.Cluster.InternalClusterAction+InitJoinNack, Akka.Cluster")]
    [InlineData("Akka.Cluster.InternalClusterAction+Join, Akka.Cluster")]
    [InlineData("Akka.Cluster.InternalClusterAction+Welcome, Akka.Cluster")]
    [InlineData("Akka.Cluster.InternalClusterAction+ExitingConfirmed, Akka.Cluster")]
    [InlineData("Akka.Cluster.ClusterUserAction+Leave, Akka.Cluster")]
    [InlineData("Akka.Cluster.ClusterUserAction+Down, Akka.Cluster")]
    [InlineData("Akka.Cluster.ClusterHeartbeatSender+Heartbeat, Akka.Cluster")]
    [InlineData("Akka.Cluster.ClusterHeartbeatSender+HeartbeatRsp, Akka.Cluster")]
    [InlineData("Akka.Cluster.Tools.Singleton.HandOverToMe, Akka.Cluster.Tools")]
    [InlineData("Akka.Cluster.Tools.Singleton.HandOverInProgress, Akka.Cluster.Tools")]
    [InlineData("Akka.Cluster.Tools.Singleton.HandOverDone, Akka.Cluster.Tools")]
    [InlineData("Akka.Cluster.Tools.Singleton.TakeOverFromMe, Akka.Cluster.Tools")]
    [InlineData("System.String")]
    [InlineData("System.Int32")]
    [InlineData("System.Int64")]
    [InlineData("System.Byte[]")]
    public void Akka_messages_that_cross_the_wire_keep_their_own_serializers(string typeName)
    {
        var type = Type.GetType(typeName, throwOnError: true)!;
        var serializer = _system.Serialization.FindSerializerForType(type);
        Assert.False(serializer is RefusingSerializer or ColmMessageSerializer, $"{typeName} would go to {serializer.GetType().Name}");
    }
}
