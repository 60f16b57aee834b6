using System.Diagnostics;

namespace CoLM.System.Tests;

/// <summary>Runs the real `colm` program (the CLI assembly built next to the tests) as a child process.</summary>
public static class ColmProcess
{
    public sealed record Outcome(int ExitCode, string Stdout, string Stderr);

    public static Task<Outcome> RunAsync(string workingDirectory, params string[] args) => RunAsync(workingDirectory, _ => { }, args);

    /// <summary>As above; <paramref name="started"/> gets the process id (to signal it).</summary>
    public static async Task<Outcome> RunAsync(string workingDirectory, Action<int> started, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "colm.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        // No HTTP host on the default port from a test's process (a --set colm.telemetry.http=on asks for one: --set wins over the environment).
        start.Environment["COLM__TELEMETRY__HTTP"] = "off";
        using var process = Process.Start(start)!;
        started(process.Id);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(timeout.Token);
        return new Outcome(process.ExitCode, await stdout, await stderr);
    }
}
