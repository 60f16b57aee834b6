namespace CoLM.Collectives;

/// <summary>Every trainer of the run lives in this process: one <see cref="InProcessCollectiveGroup"/>.</summary>
public sealed class InProcessDataPlane(int worldSize, TimeSpan timeout) : IDataPlane
{
    private readonly InProcessCollectiveGroup _group = new(worldSize, timeout);

    public string EndpointOf(int localIndex) => "";

    public ICollective Join(int localIndex, int rank, long generation, IReadOnlyList<string> peers, CancellationToken cancellationToken = default)
    {
        if (peers.Count != _group.WorldSize)
            throw new ArgumentException($"the in-process group has {_group.WorldSize} ranks, the membership lists {peers.Count}", nameof(peers));
        _group.BeginGeneration(generation);
        return _group.ForRank(rank);
    }

    // One group for every local rank: breaking one rank's generation breaks it for all of them,
    // which is what waking the peers of a failed rank needs.
    public void Abort(int localIndex, string reason) => _group.Abort(reason);

    public void AbortAll(string reason) => _group.Abort(reason);

    public void Dispose() => _group.Dispose();
}
