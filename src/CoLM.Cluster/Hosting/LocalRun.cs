using CoLM.Cluster.Runs;
using CoLM.Collectives;
using CoLM.Training.Settings;

namespace CoLM.Cluster.Hosting;

/// <summary>
/// Runs a plan in this process as a cluster of one: a node with both roles and one trainer per
/// colm.train.trainers, wired exactly as `colm node` (<see cref="HostedNode"/>), to which this
/// process submits the run as `colm train --cluster` would (<see cref="RunSubmission"/>). Its
/// trainers share an in-process data plane.
/// </summary>
public static class LocalRun
{
    public static async Task<RunResult> RunAsync(RunPlan plan, IRunObserver observer, CancellationToken stop)
    {
        var s = plan.Settings;
        var node = s.Cluster with
        {
            Roles = [ClusterSettings.CoordinatorRole, ClusterSettings.TrainerRole],
            SeedNodes = [],
            Devices = DeviceSpec.Cpu(s.Train.Trainers),
        };
        InProcessDataPlane? dataPlane = null;
        await using var host = await HostedNode.StartAsync(s, node, plan.Hocon,
            (run, trainers) => dataPlane = new InProcessDataPlane(trainers, run.Cluster.CollectiveTimeout), _ => { }, stop);
        if (host.HttpUrl is { } url) observer.OnNotice($"dashboard at {url}");
        try
        {
            // The run ends on this node with the process: disposing the host stops its actors, then its data plane and exporters.
            return await RunSubmission.FollowAsync(host.System, [host.Cluster.SelfAddress.ToString()], plan, observer, node.PhaseTimeout, stop,
                endOnNodes: false);
        }
        finally
        {
            // A run that failed may leave a trainer blocked in a collective: wake it before the actors are stopped.
            dataPlane?.AbortAll("run finished");
        }
    }
}
