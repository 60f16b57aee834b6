namespace CoLM.Collectives.Tcp;

/// <summary>Settings of a <see cref="TcpRingCollective"/>.</summary>
/// <param name="Timeout">
/// How long a rank waits for a peer: to connect in <see cref="TcpRingCollective.BeginGeneration"/>,
/// and to send (or accept) the next bytes of a call. <see cref="System.Threading.Timeout.InfiniteTimeSpan"/> waits forever.
/// </param>
/// <param name="SegmentBytes">
/// Transfers are cut into segments of this many bytes (a positive multiple of 4), pipelined around
/// the ring: a rank forwards segment k while it receives and adds segment k + 1.
/// </param>
public sealed record TcpRingOptions(TimeSpan Timeout, int SegmentBytes = 1 << 20);
