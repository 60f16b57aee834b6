using Akka.Actor;
using CoLM.Cluster.Actors;
using CoLM.Cluster.Configuration;
using CoLM.Cluster.Hosting;
using CoLM.Cluster.Runs;
using CoLM.Telemetry;

namespace CoLM.System.Tests;

/// <summary>The coordinator's membership rules, driven with registrations from stand-in trainers.</summary>
public sealed class CoordinatorMembershipTests : IDisposable
{
    private readonly TinyRun _tiny = new();

    public void Dispose() => _tiny.Dispose();

    [Fact]
    public async Task A_run_whose_trainers_do_not_all_arrive_stops_at_the_phase_timeout_saying_how_many_came()
    {
        var plan = RunPlan.Prepare([], _tiny.Sets("short", "colm.train.trainers=2", "colm.cluster.phase-timeout=1s"), null);
        using var instruments = new ColmInstruments("short");
        var completion = new TaskCompletionSource<RunResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var system = ActorSystem.Create("colm", HoconSources.Defaults());
        var coordinator = system.ActorOf(CoordinatorActor.Props(new CoordinatorContext(plan.Settings, plan.ResolvedConfig, plan.Data, plan.Run,
            instruments, SilentObserver.Instance, completion, null)));

        coordinator.Tell(new RegisterTrainer(system.ActorOf(Props.Create(() => new Silent())), "akka.tcp://colm@10.0.0.1:2551", 0, "10.0.0.1:4000", 1));
        var result = await completion.Task.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal("failed", result.State);
        Assert.Contains("only 1 of 2 trainers registered within 1s", result.Error);
        await system.Terminate();
    }

    /// <summary>Stands in for a trainer: it takes the coordinator's assignments and never answers.</summary>
    private sealed class Silent : ReceiveActor
    {
        public Silent() => ReceiveAny(_ => { });
    }
}
