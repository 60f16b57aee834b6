using Akka.Actor;
using Akka.Cluster.Tools.Singleton;
using Akka.Configuration;
using CoLM.Cluster.Actors;
using CoLM.Cluster.Runs;
using CoLM.Collectives;
using CoLM.Telemetry;
using CoLM.Training;

namespace CoLM.Cluster.Hosting;

/// <summary>
/// Runs a plan on an Akka cluster of one node in this process: the same actors and protocol as
/// a multi-node run, over real remoting on loopback, with an in-process collective for the
/// trainers of this node.
/// </summary>
public static class LocalRun
{
    public static async Task<RunResult> RunAsync(RunPlan plan, IRunObserver observer, CancellationToken stop)
    {
        var s = plan.Settings;
        int torchThreads = s.Train.ThreadsFor(Environment.ProcessorCount);
        TorchSharp.torch.set_num_threads(torchThreads);
        using var telemetry = TelemetryPipeline.Start(new TelemetryOptions(s.Telemetry.Exporter,
            Path.Combine(plan.Run.Path, s.Telemetry.File), s.Telemetry.MetricInterval,
            s.Telemetry.PrometheusHost, s.Telemetry.PrometheusPort));
        using var instruments = new ColmInstruments(Path.GetFileName(plan.Run.Path));
        using var dataPlane = new InProcessDataPlane(s.Train.Trainers, s.Cluster.CollectiveTimeout);
        var completion = new TaskCompletionSource<RunResult>(TaskCreationOptions.RunContinuationsAsynchronously);

        var akkaConfig = ConfigurationFactory.ParseString(
            $"akka.remote.dot-netty.tcp.hostname = \"{s.Cluster.Hostname}\"\nakka.remote.dot-netty.tcp.port = {s.Cluster.Port}")
            .WithFallback(plan.Hocon);
        var system = ActorSystem.Create("colm", akkaConfig);
        try
        {
            var cluster = Akka.Cluster.Cluster.Get(system);
            var up = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            cluster.RegisterOnMemberUp(() => up.TrySetResult());
            cluster.Join(cluster.SelfAddress);
            await up.Task.WaitAsync(TimeSpan.FromSeconds(30), stop);

            var context = new CoordinatorContext(s, plan.ResolvedConfig, plan.Data, plan.Run, instruments, observer, completion, plan.ResumeFrom);
            system.ActorOf(ClusterSingletonManager.Props(CoordinatorActor.Props(context), PoisonPill.Instance,
                ClusterSingletonManagerSettings.Create(system).WithRole("coordinator")), "coordinator");
            var coordinator = system.ActorOf(ClusterSingletonProxy.Props("/user/coordinator",
                ClusterSingletonProxySettings.Create(system).WithRole("coordinator")), "coordinator-proxy");
            var faults = new FaultInjector(s.Train.Faults);
            var node = cluster.SelfAddress.ToString();
            system.ActorOf(NodeGuardian.Props(new TrainerContext(s, plan.Data, dataPlane, faults, coordinator, node, torchThreads), s.Train.Trainers), "trainers");

            await using var onStop = stop.Register(() => coordinator.Tell(new StopRequested("interrupted")));
            return await completion.Task;
        }
        finally
        {
            // Wake any trainer still blocked in a collective so the actor system can stop.
            dataPlane.AbortAll("run finished");
            await system.Terminate().WaitAsync(TimeSpan.FromSeconds(30)).ContinueWith(_ => { });
        }
    }
}
