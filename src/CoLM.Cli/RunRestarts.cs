using CoLM.Cluster.Coordination;
using CoLM.Cluster.Hosting;
using CoLM.Cluster.Runs;

namespace CoLM.Cli;

/// <summary>
/// colm.train.max-failures (like Ray's FailureConfig): a run that failed for a reason other than
/// bad input restarts itself from its newest checkpoint that verifies, up to that many times, so a
/// long run survives a fault no one is there to see. Each restart is said on stderr and recorded
/// as a `run-restart` row in metrics.jsonl. Injected faults (colm.train.fault-injection) fire in a
/// run's first attempt only, or a test fault would fail every attempt the same way.
/// </summary>
internal static class RunRestarts
{
    private static readonly string[] FaultsOff =
    [
        "colm.train.fault-injection.crash-at-step=0", "colm.train.fault-injection.diverge-at-step=0",
        "colm.train.fault-injection.hang-at-step=0",
    ];

    /// <summary>The settings of a restarted attempt: the invocation's own, without injected faults.</summary>
    public static string[] SetsFor(IReadOnlyList<string> sets) => [.. sets, .. FaultsOff];

    /// <summary>
    /// True when <paramref name="result"/> should be retried from a checkpoint (and says so, and
    /// records it); false when the run ended otherwise, restarts are used up, it was interrupted,
    /// or it failed before writing any checkpoint (also said).
    /// </summary>
    public static bool ShouldRestart(RunResult result, RunPlan plan, int failuresSoFar, bool interrupted)
    {
        int allowed = plan.Settings.Train.MaxFailures;
        if (result.State != "failed" || result.BadInput || interrupted || failuresSoFar >= allowed) return false;
        var latest = CheckpointStore.Latest(plan.Run);
        Console.Error.WriteLine($"colm: run failed after step {result.Step}: {result.Error}");
        if (latest is null)
        {
            Console.Error.WriteLine("colm: no checkpoint to restart from (colm.train.max-failures)");
            return false;
        }
        Console.Error.WriteLine($"colm: restarting from the newest checkpoint ({latest.Name}); failure {failuresSoFar + 1} of " +
                                $"colm.train.max-failures = {allowed}");
        plan.Run.AppendMetrics(new RunRestartRow(failuresSoFar + 1, result.Step, latest.Step, result.Error ?? ""));
        return true;
    }
}
