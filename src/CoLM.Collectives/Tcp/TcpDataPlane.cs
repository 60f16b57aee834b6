namespace CoLM.Collectives.Tcp;

/// <summary>
/// Trainers in several processes: each local trainer owns a <see cref="TcpRingCollective"/> that
/// listens from the moment its endpoint is announced, and rejoins the ring at every generation.
/// </summary>
public sealed class TcpDataPlane(string bindHost, string advertisedHost, TcpRingOptions options) : IDataPlane
{
    private readonly Dictionary<int, TcpRingCollective> _byLocalIndex = new();
    private readonly object _gate = new();
    private bool _disposed;

    public string EndpointOf(int localIndex)
    {
        var ring = For(localIndex);
        // Bound to bindHost (possibly 0.0.0.0); peers must be given the address they can reach.
        string port = ring.LocalEndpoint[(ring.LocalEndpoint.LastIndexOf(':') + 1)..];
        return $"{advertisedHost}:{port}";
    }

    public ICollective Join(int localIndex, int rank, long generation, IReadOnlyList<string> peers, CancellationToken cancellationToken = default)
    {
        var ring = For(localIndex);
        ring.BeginGeneration(generation, rank, peers, cancellationToken);
        return ring;
    }

    public void Abort(int localIndex, string reason)
    {
        lock (_gate)
        {
            if (_byLocalIndex.TryGetValue(localIndex, out var ring)) ring.Abort(reason);
        }
    }

    public void AbortAll(string reason)
    {
        lock (_gate)
        {
            foreach (var ring in _byLocalIndex.Values) ring.Abort(reason);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            foreach (var ring in _byLocalIndex.Values) ring.Dispose();
            _byLocalIndex.Clear();
        }
    }

    private TcpRingCollective For(int localIndex)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_byLocalIndex.TryGetValue(localIndex, out var ring))
            {
                ring = new TcpRingCollective(bindHost, options);
                _byLocalIndex[localIndex] = ring;
            }
            return ring;
        }
    }
}
