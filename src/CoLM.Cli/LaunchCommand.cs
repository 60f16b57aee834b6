using System.Diagnostics;
using System.Reflection;
using CoLM.Cluster.Hosting;

namespace CoLM.Cli;

/// <summary>
/// `colm launch --nodes N [--coordinators K]`: N local `colm node` processes on loopback (node 0
/// the coordinator, the others trainers; one node does both) plus the run submitted to them.
/// With K >= 3, nodes 1 to K-1 are standby coordinators that also train: when node 0 dies the
/// run's coordinator fails over to node 1 (hocon/akka.conf says why two is not enough). Their
/// output is streamed with a [node-i] prefix; they are stopped when the run ends, on Ctrl-C, or
/// if the launcher itself dies (their stdin closes).
/// </summary>
public static class LaunchCommand
{
    public static async Task<int> RunAsync(CommandLine cl, CancellationToken external)
    {
        if (!int.TryParse(cl.Options.GetValueOrDefault("nodes", "3"), out int n) || n < 1)
            throw new UsageException("--nodes needs a whole number of at least 1");
        if (!int.TryParse(cl.Options.GetValueOrDefault("coordinators", "1"), out int coordinators) || coordinators < 1 || coordinators > n)
            throw new UsageException($"--coordinators needs a whole number from 1 to --nodes ({n})");
        if (coordinators == 2)
            throw new UsageException("--coordinators 2 gives no failover: the split-brain resolver moves the coordinator only when at least " +
                                     "two other coordinator-role nodes remain (hocon/akka.conf); use 1, or 3 or more");
        // Validates the layers (unknown keys, bad values) before any process starts.
        var settings = Cluster.Configuration.SettingsReader.Read(RunPlan.Layer(null, cl.ConfigFiles, cl.Sets));
        await using var nodes = LocalNodes.Start(n, cl.ConfigFiles, cl.Sets, echo: true, settings.Telemetry.HttpPort, coordinators: coordinators);
        if (!cl.Quiet)
            Console.WriteLine($"colm launch: {n} node(s) on 127.0.0.1 ports {string.Join(", ", nodes.Ports)}; seed {nodes.Seed}" +
                              (coordinators > 1 ? $"; coordinator role on nodes 0-{coordinators - 1}" : ""));
        return await ColmCommand.ClusterTrainAsync(cl, nodes.Seed, expectedNodes: n, external);
    }

    /// <summary>
    /// This same program (the apphost, or `dotnet colm.dll` when started that way) with these
    /// arguments, then every configuration file and --set layer, so a child reads the same settings.
    /// </summary>
    internal static ProcessStartInfo SelfStartInfo(IEnumerable<string> args, IReadOnlyList<string> configFiles, IReadOnlyList<string> sets)
    {
        string host = Environment.ProcessPath ?? "dotnet";
        var start = new ProcessStartInfo(host) { UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(host) == "dotnet")
            start.ArgumentList.Add(Assembly.GetEntryAssembly()!.Location);
        foreach (var a in args) start.ArgumentList.Add(a);
        foreach (var file in configFiles)
        {
            start.ArgumentList.Add("--config");
            start.ArgumentList.Add(file);
        }
        foreach (var set in sets)
        {
            start.ArgumentList.Add("--set");
            start.ArgumentList.Add(set);
        }
        return start;
    }
}
