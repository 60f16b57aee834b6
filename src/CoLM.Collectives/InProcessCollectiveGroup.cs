namespace CoLM.Collectives;

/// <summary>
/// Collective for several trainer threads (one per device) inside one process.
/// <para>
/// A call is a rendezvous in two barriers. Arrive: each rank publishes a pointer to its pinned
/// span; the last to arrive checks that everyone brought the same operation and length. Work:
/// rank r handles chunk r of every rank's buffer (sums it in the canonical order of
/// <see cref="RingReductionOrder"/> and writes the sum back to all of them, or copies the root's bytes to all of them). Finish: nobody returns until every
/// rank is done, because until then a peer may still be writing into its buffer.
/// </para>
/// <para>
/// Failure is per generation: an abort, a timeout or a cancellation breaks the current generation
/// (every waiting or later caller throws) until <see cref="BeginGeneration"/> starts a fresh one.
/// A wrong argument (mismatched lengths, operations or roots) fails that one call on every rank
/// and leaves the group usable, since the ranks still agree on which call is which.
/// </para>
/// </summary>
public sealed partial class InProcessCollectiveGroup : IDisposable
{
    private static readonly Action<object?> WakeAll = static state =>
    {
        var group = (InProcessCollectiveGroup)state!;
        lock (group._gate)
        {
            Monitor.PulseAll(group._gate);
        }
    };

    private readonly object _gate = new();
    private readonly InProcessCollective[] _ranks;
    private readonly TimeSpan _timeout;
    private GenerationState _current;
    private long _generation;
    private bool _disposed;

    /// <param name="worldSize">Number of ranks (threads) that take part in every call.</param>
    /// <param name="timeout">
    /// How long a rank waits for the others to arrive at a call before the call fails with
    /// <see cref="CollectiveTimeoutException"/>; <see cref="Timeout.InfiniteTimeSpan"/> waits forever.
    /// </param>
    public InProcessCollectiveGroup(int worldSize, TimeSpan timeout)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(worldSize, 1);
        if (timeout <= TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "The timeout must be positive or infinite.");
        }

        _timeout = timeout;
        _current = new GenerationState(0, worldSize);
        _ranks = new InProcessCollective[worldSize];
        for (var r = 0; r < worldSize; r++)
        {
            _ranks[r] = new InProcessCollective(this, r);
        }
    }

    public int WorldSize => _ranks.Length;

    public long Generation => Volatile.Read(ref _generation);

    /// <summary>The handle for one rank; the same instance for the group's whole life.</summary>
    public ICollective ForRank(int rank)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(rank, WorldSize);
        return _ranks[rank];
    }

    /// <summary>
    /// Wakes every rank waiting in (or later entering) a call of the current generation with
    /// <see cref="CollectiveAbortedException"/>. Idempotent: the first reason is kept. A call every
    /// rank had already arrived at still completes, so its result is whole on every rank.
    /// </summary>
    public void Abort(string reason)
    {
        ArgumentNullException.ThrowIfNull(reason);
        lock (_gate)
        {
            Break(_current, reason);
        }
    }

    /// <summary>
    /// Starts generation <paramref name="generation"/> if it is newer than the current one: the
    /// aborted state and any half-finished call are left behind with the old generation (whose
    /// remaining waiters are aborted). Returns false, changing nothing, for a stale generation.
    /// </summary>
    public bool BeginGeneration(long generation)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (generation <= _current.Generation)
            {
                return false;
            }

            Break(_current, $"superseded by generation {generation}");
            _current = new GenerationState(generation, WorldSize);
            Volatile.Write(ref _generation, generation);
            return true;
        }
    }

    /// <summary>Aborts the current generation; later calls throw <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (!_disposed)
            {
                _disposed = true;
                Break(_current, "the collective group was disposed");
            }
        }
    }

    /// <summary>Under the lock: breaks a generation (first reason wins) and wakes its waiters.</summary>
    private void Break(GenerationState generation, string reason)
    {
        var id = generation.Generation;
        generation.FaultOnce(() => new CollectiveAbortedException(reason, id));
        Monitor.PulseAll(_gate);
    }
}
