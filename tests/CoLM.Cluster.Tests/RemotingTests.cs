using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster.Tools.Singleton;
using CoLM.Cluster.Actors;
using CoLM.Cluster.Configuration;
using CoLM.Training;

namespace CoLM.Cluster.Tests;

/// <summary>Two actor systems form a cluster over TCP on loopback and exchange messages through the serializers.</summary>
public sealed class RemotingTests
{
    [Fact]
    public async Task Messages_cross_real_tcp_between_two_cluster_nodes_and_unregistered_ones_are_dropped()
    {
        var a = ActorSystem.Create("colm", HoconSources.Defaults());
        var b = ActorSystem.Create("colm", HoconSources.Defaults());
        try
        {
            var clusterA = Akka.Cluster.Cluster.Get(a);
            var clusterB = Akka.Cluster.Cluster.Get(b);
            var upA = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var upB = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            clusterA.RegisterOnMemberUp(() => upA.TrySetResult());
            clusterB.RegisterOnMemberUp(() => upB.TrySetResult());
            clusterA.Join(clusterA.SelfAddress);
            await upA.Task.WaitAsync(TimeSpan.FromSeconds(10));
            clusterB.Join(clusterA.SelfAddress);
            await upB.Task.WaitAsync(TimeSpan.FromSeconds(10));

            b.ActorOf(Props.Create(() => new EchoActor()), "echo");
            var echo = await a.ActorSelection(new RootActorPath(clusterB.SelfAddress) / "user" / "echo")
                .ResolveOne(TimeSpan.FromSeconds(5));
            Assert.Equal(clusterB.SelfAddress, echo.Path.Address);

            // Refused on A's side and dropped; the association stays up for what follows.
            echo.Tell(new NotRegistered(42));

            var sketches = MessageSamples.Sketches(64, 16) with { Features = MessageSamples.AwkwardFloats };
            var sketchesBack = await echo.Ask<Sketches>(sketches, TimeSpan.FromSeconds(5));
            MessageSamples.AssertSameContents(sketches, sketchesBack);

            // Exact features of a large model (32 examples x 40960 floats, ~5 MiB) fit in one frame.
            var exact = MessageSamples.Sketches(32, 0) with
            {
                Features = Enumerable.Range(0, 32 * 40960).Select(i => (float)i).ToImmutableArray(),
            };
            var exactBack = await echo.Ask<Sketches>(exact, TimeSpan.FromSeconds(8));
            Assert.True(exact.Features.AsSpan().SequenceEqual(exactBack.Features.AsSpan()));

            var done = new StepDone(3, 4, 1, new TrainOutcome(2.5, 16, TimeSpan.FromMilliseconds(5), TimeSpan.FromMilliseconds(1),
                TimeSpan.FromTicks(7), 0x0123_4567_89AB_CDEF));
            var doneBack = await echo.Ask<StepDone>(done, TimeSpan.FromSeconds(5));
            Assert.Equal(done, doneBack);   // no arrays inside: record equality is structural

            // An actor ref of A goes to B and back, and resolves to the same local actor on A.
            var probe = a.ActorOf(Props.Create(() => new EchoActor()), "probe");
            var register = new RegisterTrainer(probe, clusterA.SelfAddress.ToString(), 0, "", 1);
            var registerBack = await echo.Ask<RegisterTrainer>(register, TimeSpan.FromSeconds(5));
            Assert.Equal(probe, registerBack.Trainer);
            Assert.Equal(register, registerBack);

            // Strings use Akka's own primitive serializer: B reports what it received, in order.
            string log = await echo.Ask<string>("log", TimeSpan.FromSeconds(5));
            Assert.Equal("Sketches,Sketches,StepDone,RegisterTrainer", log);

            // A cluster singleton on the oldest node (A), reached from B through its proxy: the
            // proxy's Identify and the hand-over protocol use Akka's bindings, ours go through ours.
            foreach (var system in new[] { a, b })
                system.ActorOf(ClusterSingletonManager.Props(Props.Create(() => new EchoActor()), PoisonPill.Instance,
                    ClusterSingletonManagerSettings.Create(system)), "singleton-echo");
            var proxy = b.ActorOf(ClusterSingletonProxy.Props("/user/singleton-echo", ClusterSingletonProxySettings.Create(b)), "singleton-proxy");
            var stop = new StopRequested("through the proxy ✓");
            Assert.Equal(stop, await proxy.Ask<StopRequested>(stop, TimeSpan.FromSeconds(8)));
        }
        finally
        {
            // One at a time: B leaves while A (the oldest, holding the singleton) stays, then A
            // leaves alone; both leaving at once makes each wait on the other's exit (~10 s).
            await b.Terminate().WaitAsync(TimeSpan.FromSeconds(15));
            await a.Terminate().WaitAsync(TimeSpan.FromSeconds(15));
        }
    }

    private sealed class EchoActor : ReceiveActor
    {
        private readonly List<string> _received = [];

        public EchoActor()
        {
            Receive<string>(s => s == "log", _ => Sender.Tell(string.Join(',', _received)));
            ReceiveAny(message =>
            {
                _received.Add(message.GetType().Name);
                Sender.Tell(message);
            });
        }
    }
}
