using System.Threading.Channels;
using Akka.Actor;
using CoLM.Cluster.Actors;
using CoLM.Cluster.Configuration;
using CoLM.Cluster.Hosting;
using CoLM.Collectives;
using CoLM.Training;

namespace CoLM.System.Tests;

/// <summary>A real trainer actor (tiny model) and a stand-in coordinator that records what the trainer says.</summary>
public sealed class TrainerEpochTests : IDisposable
{
    private readonly TinyRun _tiny = new();

    public void Dispose() => _tiny.Dispose();

    [Fact]
    public async Task A_trainer_refuses_work_from_a_coordinator_older_than_one_it_has_heard_from()
    {
        var plan = RunPlan.Prepare([], _tiny.Sets("epochs"), null);
        using var system = ActorSystem.Create("colm", HoconSources.Defaults());
        var heard = Channel.CreateUnbounded<object>();
        var coordinator = system.ActorOf(Props.Create(() => new Recorder(heard.Writer)));
        using var dataPlane = new InProcessDataPlane(1, TimeSpan.FromSeconds(10));
        var context = new TrainerContext(plan.Settings, plan.Data, dataPlane, FaultInjector.None, coordinator, "akka.tcp://colm@127.0.0.1:1", 1, 1);
        var trainer = system.ActorOf(TrainerActor.Props(context, 0));

        Assert.IsType<RegisterTrainer>(await Next(heard.Reader));
        trainer.Tell(new FromCoordinator(1, new InspectReplica(3, 0)));
        Assert.Equal(3, Assert.IsType<ReplicaInspected>(await Next(heard.Reader)).Generation);

        // Epoch 0 was taken over by epoch 1: its request is refused, so the next answer is to epoch 1's next request.
        trainer.Tell(new FromCoordinator(0, new InspectReplica(4, 0)));
        trainer.Tell(new FromCoordinator(1, new InspectReplica(5, 0)));
        Assert.Equal(5, Assert.IsType<ReplicaInspected>(await Next(heard.Reader)).Generation);

        // A newer epoch is accepted, and from then on epoch 1 is refused too.
        trainer.Tell(new FromCoordinator(2, new InspectReplica(6, 0)));
        Assert.Equal(6, Assert.IsType<ReplicaInspected>(await Next(heard.Reader)).Generation);
        trainer.Tell(new FromCoordinator(1, new InspectReplica(7, 0)));
        trainer.Tell(new FromCoordinator(2, new InspectReplica(8, 0)));
        Assert.Equal(8, Assert.IsType<ReplicaInspected>(await Next(heard.Reader)).Generation);
        await system.Terminate();
    }

    private static async Task<object> Next(ChannelReader<object> heard) => await heard.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));

    private sealed class Recorder : ReceiveActor
    {
        public Recorder(ChannelWriter<object> heard) => ReceiveAny(m => heard.TryWrite(m));
    }
}
