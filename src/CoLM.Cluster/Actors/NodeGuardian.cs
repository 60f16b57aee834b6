using Akka.Actor;

namespace CoLM.Cluster.Actors;

/// <summary>Parent of this node's trainer actors, one per device.</summary>
public sealed class NodeGuardian : ReceiveActor
{
    public NodeGuardian(TrainerContext context, int trainers)
    {
        for (int rank = 0; rank < trainers; rank++)
            Context.ActorOf(TrainerActor.Props(context, rank), $"trainer-{rank}");
    }

    public static Props Props(TrainerContext context, int trainers) =>
        Akka.Actor.Props.Create(() => new NodeGuardian(context, trainers));

    // A trainer's replica can always be rebuilt from config and a healthy peer, so a throwing
    // trainer is restarted rather than stopped. A trainer that keeps failing (3 times in a
    // minute) is stopped; the coordinator watches it and ends the run with a clear message.
    protected override SupervisorStrategy SupervisorStrategy() =>
        new OneForOneStrategy(maxNrOfRetries: 3, withinTimeRange: TimeSpan.FromMinutes(1),
            localOnlyDecider: _ => Directive.Restart);
}
