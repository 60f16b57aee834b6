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

    // Restart, up to a limit: Runs.FailurePolicy says why.
    protected override SupervisorStrategy SupervisorStrategy() => Runs.FailurePolicy.TrainerSupervision();
}
