using CoLM.Cluster.Hosting;
using CoLM.Cluster.Runs;
using CoLM.Telemetry.Dashboard;
using CoLM.Telemetry.Http;

namespace CoLM.Cli;

/// <summary>
/// `colm dashboard RUN_DIR`: the live dashboard page of one run directory, finished, failed or
/// still running (it follows metrics.jsonl and status.json as they grow), on the HTTP host's
/// address (colm.telemetry.http-host / http-port), until Ctrl-C.
/// </summary>
public static class DashboardCommand
{
    public static async Task<int> RunAsync(CommandLine cl, CancellationToken stop)
    {
        if (cl.Arguments.Count != 1) throw new UsageException("colm dashboard needs exactly one RUN_DIR (a run directory, e.g. runs/default)");
        var run = RunDirectory.OpenExisting(Path.GetFullPath(cl.Arguments[0]));
        if (!File.Exists(run.MetricsFile) && !File.Exists(run.StatusFile))
            throw new RunDirectoryException(run.Path, "has neither metrics.jsonl nor status.json: is it a run directory?");
        var settings = Cluster.Configuration.SettingsReader.Read(RunPlan.Layer(null, cl.ConfigFiles, cl.Sets)).Telemetry;
        var runs = new RunCatalog();
        runs.Add(new DashboardRun(Path.GetFileName(run.Path.TrimEnd(Path.DirectorySeparatorChar)), run.Path));
        await using var host = await NodeHttpHost.StartAsync(new HttpHostOptions(settings.HttpHost, settings.HttpPort), meters: null, () => true, runs);
        Console.WriteLine($"colm dashboard: {run.Path} at {host.Url} (Ctrl-C to stop)");
        using var done = CancellationTokenSource.CreateLinkedTokenSource(stop);
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;
            done.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        using var onTerm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, e =>
        {
            e.Cancel = true;
            done.Cancel();
        });
        try
        {
            await Task.Delay(Timeout.Infinite, done.Token);
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
        return ColmCommand.Ok;
    }
}
