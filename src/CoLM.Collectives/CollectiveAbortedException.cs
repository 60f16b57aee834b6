namespace CoLM.Collectives;

/// <summary>
/// An operation could not complete because its generation was aborted (a rank died, a rank
/// cancelled, the group was disposed or superseded). Recover by starting a new generation.
/// </summary>
public sealed class CollectiveAbortedException : Exception
{
    public CollectiveAbortedException(string reason, long generation)
        : base($"Collective generation {generation} was aborted: {reason}")
    {
        Reason = reason;
        Generation = generation;
    }

    public string Reason { get; }

    public long Generation { get; }
}
