namespace CoLM.Collectives;

/// <summary>The operation a rank brought to a rendezvous; all ranks must bring the same one.</summary>
internal enum CollectiveOp
{
    AllReduceSum,
    Broadcast,
}
