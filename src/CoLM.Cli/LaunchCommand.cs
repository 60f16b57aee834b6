using System.Diagnostics;
using System.Reflection;
using CoLM.Cluster.Hosting;

namespace CoLM.Cli;

/// <summary>
/// `colm launch --nodes N`: N local `colm node` processes on loopback (node 0 the coordinator,
/// the others trainers; one node does both) plus the run submitted to them. Their output is
/// streamed with a [node-i] prefix; they are stopped when the run ends, on Ctrl-C, or if the
/// launcher itself dies (their stdin closes).
/// </summary>
public static class LaunchCommand
{
    public static async Task<int> RunAsync(CommandLine cl, CancellationToken external)
    {
        if (!int.TryParse(cl.Options.GetValueOrDefault("nodes", "3"), out int n) || n < 1)
            throw new UsageException("--nodes needs a whole number of at least 1");
        // Validates the layers (unknown keys, bad values) before any process starts.
        var settings = Cluster.Configuration.SettingsReader.Read(RunPlan.Layer(null, cl.ConfigFiles, cl.Sets));
        await using var nodes = LocalNodes.Start(n, cl.ConfigFiles, cl.Sets, echo: true, settings.Telemetry.PrometheusPort);
        if (!cl.Quiet) Console.WriteLine($"colm launch: {n} node(s) on 127.0.0.1 ports {string.Join(", ", nodes.Ports)}; seed {nodes.Seed}");
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
