namespace CoLM.Collectives;

/// <summary>
/// One rank's view of a data-plane communicator. Every rank calls the same operations in the same
/// order with buffers of the same length; a call returns once every rank has its result.
/// Implementations: in-process (threads of one process), TCP ring, NCCL.
/// </summary>
public interface ICollective
{
    int Rank { get; }

    int WorldSize { get; }

    /// <summary>Communicator generation; bumped at a step boundary after a membership change.</summary>
    long Generation { get; }

    /// <summary>
    /// In-place sum across ranks. Every rank must pass a buffer of the same length. The result is
    /// bit-identical on every rank, independent of thread timing, and the same for every backend:
    /// each element is summed in the canonical order of <see cref="RingReductionOrder"/> (chunk c
    /// of the buffer is folded starting at rank c + 1 and ending with rank c; for two ranks that
    /// is rank order).
    /// </summary>
    void AllReduceSum(Span<float> buffer, CancellationToken cancellationToken = default);

    /// <summary>Copies root's bytes into every rank's buffer (same length everywhere).</summary>
    void Broadcast(Span<byte> buffer, int root, CancellationToken cancellationToken = default);
}
