namespace CoLM.Collectives;

/// <summary>
/// Some ranks did not arrive at an operation within the group's timeout. The generation is then
/// unusable (ranks no longer agree on which call is which) until a new one begins.
/// </summary>
public sealed class CollectiveTimeoutException : Exception
{
    public CollectiveTimeoutException(string operation, long generation, IReadOnlyList<int> missingRanks, TimeSpan timeout)
        : base($"{operation} in generation {generation} timed out after {timeout.TotalMilliseconds:0} ms: "
               + $"rank(s) {string.Join(", ", missingRanks)} did not arrive")
    {
        Operation = operation;
        Generation = generation;
        MissingRanks = missingRanks;
        Timeout = timeout;
    }

    /// <summary>Which call timed out, e.g. "AllReduceSum call #12".</summary>
    public string Operation { get; }

    public long Generation { get; }

    public IReadOnlyList<int> MissingRanks { get; }

    public TimeSpan Timeout { get; }
}
