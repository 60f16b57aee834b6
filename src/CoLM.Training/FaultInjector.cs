using CoLM.Training.Settings;

namespace CoLM.Training;

/// <summary>
/// Deliberate faults for recovery tests. One instance per node, outliving trainer restarts, so a
/// fault fires once per run and the restarted trainer does not trip over it again.
/// </summary>
public sealed class FaultInjector(FaultInjectionSettings settings)
{
    private int _crashFired;
    private int _divergeFired;
    private int _hangFired;

    public static FaultInjector None { get; } = new(new FaultInjectionSettings(0, 0, 0, 0));

    public bool ShouldCrash(long step, int rank) =>
        settings.CrashAtStep > 0 && step == settings.CrashAtStep && rank == settings.CrashRank
        && Interlocked.Exchange(ref _crashFired, 1) == 0;

    /// <summary>
    /// A hung trainer, as opposed to a dead one: its thread sleeps (the process and its actors
    /// stay alive and answer nothing about this step) so its peers wait for it at the all-reduce.
    /// </summary>
    public void MaybeHang(long step, int rank)
    {
        if (settings.HangAtStep > 0 && step == settings.HangAtStep && rank == settings.HangRank
            && Interlocked.Exchange(ref _hangFired, 1) == 0)
            Thread.Sleep(settings.HangFor);
    }

    public bool ShouldDiverge(long step, int rank) =>
        settings.DivergeAtStep > 0 && step == settings.DivergeAtStep && rank == settings.DivergeRank
        && Interlocked.Exchange(ref _divergeFired, 1) == 0;
}

/// <summary>The exception a crash fault throws; it says it was injected so no one hunts for a bug.</summary>
public sealed class InjectedFaultException(long step, int rank)
    : Exception($"injected fault: trainer rank {rank} crashed during step {step} (colm.train.fault-injection)");
