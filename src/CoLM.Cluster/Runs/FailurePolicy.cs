using Akka.Actor;
using CoLM.Collectives;

namespace CoLM.Cluster.Runs;

/// <summary>What a failure means for the run; <see cref="FailurePolicy"/> decides it.</summary>
public enum FailureAction
{
    /// <summary>The user's settings, data, model, checkpoint or storage: retrying meets it again; stop the run, exit 2, say what.</summary>
    StopBadInput,

    /// <summary>Another rank crashed or hung while this one waited on it: not this replica's fault; the coordinator waits for that rank's restart.</summary>
    WaitForPeer,

    /// <summary>This replica may be corrupt (a libtorch error, a bug in the step): rebuild it from config and a healthy peer, retry the step.</summary>
    RestartAndRetry,
}

/// <summary>
/// The one place that classifies a failure, for the trainer (report or throw), its supervisor
/// (restart) and the coordinator (how a run ends). A replica can always be rebuilt from config and
/// a healthy peer, so anything that is neither bad input nor a peer's failure is retried; a
/// trainer that keeps failing (<see cref="MaxRestarts"/> within <see cref="RestartWindow"/>) is
/// stopped, and the coordinator ends the run naming it. How long the coordinator waits for a
/// restart after a peer reported a step aborted is `colm.cluster.restart-grace`.
/// </summary>
public static class FailurePolicy
{
    public const int MaxRestarts = 3;
    public static readonly TimeSpan RestartWindow = TimeSpan.FromMinutes(1);

    public static (FailureAction Action, string Message) Classify(Exception error)
    {
        var cause = Unwrap(error);
        if (BadInput.Describe(cause) is { } message) return (FailureAction.StopBadInput, message);
        if (cause is CollectiveAbortedException or CollectiveTimeoutException) return (FailureAction.WaitForPeer, cause.Message);
        return (FailureAction.RestartAndRetry, cause.Message);
    }

    /// <summary>The trainer supervisor's decision: every failure that reaches it is a replica to rebuild.</summary>
    public static SupervisorStrategy TrainerSupervision() =>
        new OneForOneStrategy(MaxRestarts, RestartWindow, localOnlyDecider: _ => Directive.Restart);

    public static Exception Unwrap(Exception error) =>
        error is AggregateException agg ? agg.Flatten().InnerException ?? error : error;
}
