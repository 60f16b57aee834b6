using System.Runtime.InteropServices;
using Akka.Actor;
using CoLM.Cluster.Configuration;
using CoLM.Cluster.Runs;
using CoLM.Collectives;
using CoLM.Data;

namespace CoLM.Cluster.Tests;

public sealed class FailurePolicyTests
{
    [Fact]
    public void The_users_input_stops_the_run_with_its_own_message_however_deeply_wrapped()
    {
        Assert.Equal((FailureAction.StopBadInput, "config colm.train.steps: must be positive"),
            FailurePolicy.Classify(new ConfigException("colm.train.steps", "must be positive")));
        var wrapped = new AggregateException(new AggregateException(new DataFormatException("data.jsonl:3", "missing field 'source'")));
        Assert.Equal(FailureAction.StopBadInput, FailurePolicy.Classify(wrapped).Action);
        Assert.Contains("missing field 'source'", FailurePolicy.Classify(wrapped).Message);
        Assert.Equal(FailureAction.StopBadInput, FailurePolicy.Classify(new IOException("No space left on device : '/runs/x'", 28)).Action);
    }

    [Fact]
    public void A_collective_that_a_peer_aborted_or_left_waiting_waits_for_that_peer()
    {
        Assert.Equal(FailureAction.WaitForPeer, FailurePolicy.Classify(new CollectiveAbortedException("rank 1 crashed", 3)).Action);
        Assert.Equal(FailureAction.WaitForPeer, FailurePolicy.Classify(new CollectiveTimeoutException("all-reduce", 3, [1], TimeSpan.FromSeconds(1))).Action);
    }

    [Fact]
    public void Anything_else_rebuilds_the_replica_and_retries_and_the_supervisor_restarts_a_limited_number_of_times()
    {
        // libtorch's errors arrive as ExternalException (TorchSharp's "Unknown scalar type" among them).
        Assert.Equal(FailureAction.RestartAndRetry, FailurePolicy.Classify(new ExternalException("Unknown scalar type.")).Action);
        Assert.Equal(FailureAction.RestartAndRetry, FailurePolicy.Classify(new InvalidOperationException("replica state")).Action);

        var strategy = Assert.IsType<OneForOneStrategy>(FailurePolicy.TrainerSupervision());
        Assert.Equal(FailurePolicy.MaxRestarts, strategy.MaxNumberOfRetries);
        Assert.Equal(Directive.Restart, strategy.Decider.Decide(new ExternalException("x")));
    }
}
