using System.Runtime.InteropServices;
using CoLM.Cluster.Configuration;
using CoLM.Cluster.Hosting;

namespace CoLM.Cli;

/// <summary>`colm node`: one cluster member waiting for runs, until Ctrl-C or SIGTERM (or, when managed by `colm launch`, until its stdin closes).</summary>
public static class NodeCommand
{
    public static async Task<int> RunAsync(CommandLine cl, CancellationToken external)
    {
        var layered = RunPlan.Layer(null, cl.ConfigFiles, cl.Sets);
        var settings = SettingsReader.Read(layered);
        bool managed = cl.Options.ContainsKey("managed");
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(external);
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            // Managed nodes share the launcher's terminal: its Ctrl-C is the launcher's to handle.
            e.Cancel = true;
            if (!managed) stop.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            stop.Cancel();
        });
        if (managed) _ = Task.Run(() => ExitWhenStdinCloses(stop));
        try
        {
            await NodeHost.RunAsync(settings, layered, line => Console.WriteLine("colm node: " + line), stop.Token);
            return ColmCommand.Ok;
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            return ColmCommand.Interrupted;
        }
        catch (NodeRemovedException e)
        {
            Console.Error.WriteLine("colm node: error: " + e.Message);
            return ColmCommand.RunFailed;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    private static void ExitWhenStdinCloses(CancellationTokenSource stop)
    {
        using var stdin = Console.OpenStandardInput();
        var buffer = new byte[256];
        while (stdin.Read(buffer) > 0)
        {
        }
        stop.Cancel();
    }
}
