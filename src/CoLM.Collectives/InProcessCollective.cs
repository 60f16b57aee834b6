namespace CoLM.Collectives;

/// <summary>
/// One rank's handle on an <see cref="InProcessCollectiveGroup"/>. It pins the caller's span for
/// the duration of the call; the group guarantees no peer touches it after the call returns.
/// Peers read and write it during the call, so ranks' buffers must not overlap.
/// </summary>
internal sealed unsafe class InProcessCollective(InProcessCollectiveGroup group, int rank) : ICollective
{
    public int Rank { get; } = rank;

    public int WorldSize => group.WorldSize;

    public long Generation => group.Generation;

    public void AllReduceSum(Span<float> buffer, CancellationToken cancellationToken = default)
    {
        fixed (float* data = buffer)
        {
            group.Execute(Rank, CollectiveOp.AllReduceSum, (nint)data, buffer.Length, root: 0, cancellationToken);
        }
    }

    public void Broadcast(Span<byte> buffer, int root, CancellationToken cancellationToken = default)
    {
        fixed (byte* data = buffer)
        {
            group.Execute(Rank, CollectiveOp.Broadcast, (nint)data, buffer.Length, root, cancellationToken);
        }
    }
}
