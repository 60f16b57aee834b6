using System.Net;
using System.Net.Sockets;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Text;

namespace CoLM.Collectives.Tcp;

/// <summary>
/// One rank of a data-plane communicator over TCP, arranged in a ring: each rank keeps one link to
/// the next rank (which it writes) and one from the previous rank (which it reads).
/// <para>
/// <see cref="AllReduceSum"/> is a ring reduce-scatter followed by a ring all-gather over the
/// chunks of <see cref="RingReductionOrder"/>, so its result is bit-identical to every other
/// backend's. <see cref="Broadcast"/> passes the root's bytes along the ring. Transfers are cut
/// into <see cref="TcpRingOptions.SegmentBytes"/> segments and pipelined: a sender thread forwards
/// segment k while the calling thread receives and adds segment k + 1. Before any data moves,
/// every rank learns every rank's (operation, length, root) for the call, so a mismatch fails the
/// call on every rank with the same message and leaves the generation usable.
/// </para>
/// <para>
/// Failure is per generation: a lost link, a timeout, a cancellation or <see cref="Abort"/> breaks
/// it, the fault travels around the ring, and every call throws until
/// <see cref="BeginGeneration"/> starts a newer generation (with fresh connections).
/// </para>
/// <para>Over 400 lines on purpose: the two collectives share the per-call agreement, the
/// segment pipeline and the sender thread; the link forming is apart (TcpRingCollective.Links.cs).</para>
/// </summary>
public sealed partial class TcpRingCollective : ICollective, IDisposable
{
    /// <summary>Kernel buffer per direction; large enough to keep a segment in flight.</summary>
    internal const int SocketBufferBytes = 4 << 20;

    private static readonly TimeSpan HealthSlice = TimeSpan.FromMilliseconds(10);

    private readonly TcpRingOptions _options;
    private readonly Socket _listener;
    private readonly Thread _acceptor;
    private readonly object _gate = new();
    private readonly List<PendingLink> _pending = [];
    private readonly byte[] _staging;
    private RingSender? _sender;
    private RingGeneration? _current;
    private long _latestGeneration = long.MinValue;
    private bool _disposed;

    /// <summary>
    /// Starts listening on <paramref name="bindHost"/> (an address or host name peers can reach) and
    /// <paramref name="port"/> (0: any free port), so <see cref="LocalEndpoint"/> can be announced
    /// before ranks are known.
    /// </summary>
    public TcpRingCollective(string bindHost, TcpRingOptions options, int port = 0)
    {
        ArgumentNullException.ThrowIfNull(bindHost);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Timeout <= TimeSpan.Zero && options.Timeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.Timeout, "The timeout must be positive or infinite.");
        }

        if (options.SegmentBytes < sizeof(float) || options.SegmentBytes % sizeof(float) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.SegmentBytes, "SegmentBytes must be a positive multiple of 4.");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        _options = options;
        var address = RingEndpoint.ResolveHost(bindHost);
        _listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            _listener.Bind(new IPEndPoint(address, port));
            _listener.Listen(64);
            _listener.Blocking = false;
        }
        catch
        {
            _listener.Dispose();
            throw;
        }

        LocalEndpoint = RingEndpoint.Format(bindHost, ((IPEndPoint)_listener.LocalEndPoint!).Port);
        _staging = new byte[options.SegmentBytes];
        _acceptor = new Thread(AcceptLoop) { IsBackground = true, Name = $"ring acceptor {LocalEndpoint}" };
        _acceptor.Start();
    }

    /// <summary>"host:port" that peers connect to; announce it to the coordinator.</summary>
    public string LocalEndpoint { get; }

    public int Rank => Current().Rank;

    public int WorldSize => Current().WorldSize;

    public long Generation => Current().Id;

    /// <summary>
    /// Joins generation <paramref name="generation"/> (newer than any this rank began) as
    /// <paramref name="rank"/> of <c>endpoints.Count</c> ranks, where <c>endpoints[r]</c> is rank r's
    /// <see cref="LocalEndpoint"/>. Any previous generation is aborted and its links closed. Connects
    /// to rank (rank + 1) mod n and accepts from rank (rank - 1) mod n; the handshake carries the
    /// generation, rank and world size, so connections from another generation are refused. Returns
    /// once both links are up. Throws <see cref="CollectiveTimeoutException"/> naming the rank(s)
    /// that did not connect within the timeout, <see cref="CollectiveAbortedException"/> when the
    /// next rank refused (it is in a newer generation) or the generation was aborted meanwhile.
    /// After a failure, calls throw until a newer generation begins.
    /// </summary>
    public void BeginGeneration(long generation, int rank, IReadOnlyList<string> endpoints, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentOutOfRangeException.ThrowIfLessThan(endpoints.Count, 1, nameof(endpoints));
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(rank, endpoints.Count);

        RingGeneration fresh;
        RingGeneration? old;
        List<PendingLink> stale;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (generation <= _latestGeneration)
            {
                throw new ArgumentOutOfRangeException(
                    nameof(generation), generation, $"Generation {generation} is not newer than generation {_latestGeneration}, which this rank already began.");
            }

            _latestGeneration = generation;
            old = _current;
            fresh = new RingGeneration(generation, rank, endpoints, _options.Timeout);
            Volatile.Write(ref _current, fresh);
            stale = TakePending(p => p.Generation < generation);
        }

        Dispose(stale);
        old?.AbortByOwner($"superseded by generation {generation}");
        if (endpoints.Count == 1)
        {
            fresh.MarkConnectedAlone();
            return;
        }

        Connect(fresh, cancellationToken);
    }

    /// <summary>
    /// Breaks the current generation: calls waiting in it and later calls throw
    /// <see cref="CollectiveAbortedException"/> with this reason (the first reason wins), and its
    /// links are closed. The next rank sees the link close, the previous one gets the reason.
    /// </summary>
    public void Abort(string reason)
    {
        ArgumentNullException.ThrowIfNull(reason);
        Volatile.Read(ref _current)?.AbortByOwner(reason);
    }

    public unsafe void AllReduceSum(Span<float> buffer, CancellationToken cancellationToken = default)
    {
        var generation = Prepare(CollectiveOp.AllReduceSum, buffer.Length, root: 0, out var call, cancellationToken);
        if (generation is null || buffer.IsEmpty)
        {
            return;
        }

        fixed (float* data = buffer)
        {
            RunAllReduce(generation, data, buffer.Length, call, cancellationToken);
        }
    }

    public unsafe void Broadcast(Span<byte> buffer, int root, CancellationToken cancellationToken = default)
    {
        var generation = Prepare(CollectiveOp.Broadcast, buffer.Length, root, out var call, cancellationToken);
        if (generation is null || buffer.IsEmpty)
        {
            return;
        }

        fixed (byte* data = buffer)
        {
            RunBroadcast(generation, data, buffer.Length, root, call, cancellationToken);
        }
    }

    /// <summary>Aborts the current generation, closes every socket and stops the threads; later calls throw.</summary>
    public void Dispose() => Shutdown(notifyPeers: true);

    /// <summary>
    /// Test hook standing in for a killed process: every socket closes at once and no fault notice
    /// is sent, so peers see only the connections drop.
    /// </summary>
    internal void SimulateCrash() => Shutdown(notifyPeers: false);

    private void Shutdown(bool notifyPeers)
    {
        RingGeneration? current;
        List<PendingLink> pending;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            current = _current;
            pending = TakePending(_ => true);
            Monitor.PulseAll(_gate);
        }

        _acceptor.Join(); // it polls in short slices and closes the listener on its way out
        if (notifyPeers)
        {
            current?.AbortByOwner("the TCP ring collective was disposed");
        }
        else
        {
            current?.CloseWithoutNotice();
        }

        Dispose(pending);
        _sender?.Dispose();
    }

    private static void AddInto(Span<float> own, ReadOnlySpan<float> partial)
    {
        // own = partial + own: one IEEE addition per element, so the bits match the canonical fold.
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var width = Vector<float>.Count;
            var ownVectors = MemoryMarshal.Cast<float, Vector<float>>(own);
            var partialVectors = MemoryMarshal.Cast<float, Vector<float>>(partial);
            for (var v = 0; v < ownVectors.Length; v++)
            {
                ownVectors[v] = partialVectors[v] + ownVectors[v];
            }

            i = ownVectors.Length * width;
        }

        for (; i < own.Length; i++)
        {
            own[i] = partial[i] + own[i];
        }
    }

    private static void Dispose(List<PendingLink> links)
    {
        foreach (var link in links)
        {
            link.Socket.Dispose();
        }
    }

    private static void Configure(Socket socket)
    {
        socket.NoDelay = true;
        socket.SendBufferSize = SocketBufferBytes;
        socket.ReceiveBufferSize = SocketBufferBytes;
        socket.Blocking = false;
    }

    private RingGeneration Current()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return Volatile.Read(ref _current)
            ?? throw new InvalidOperationException("The TCP ring collective has no generation yet: call BeginGeneration first.");
    }

    private RingSender Sender() => _sender ??= new RingSender(_options.SegmentBytes, $"ring sender {LocalEndpoint}");

    /// <summary>
    /// Opens a call: checks the generation, then every rank learns every rank's header and all of
    /// them validate the same headers. Returns null when there is nothing to move (a world of one).
    /// </summary>
    private RingGeneration? Prepare(CollectiveOp op, int length, int root, out CallId call, CancellationToken cancellationToken)
    {
        var generation = Current();
        generation.ThrowIfFaulted();
        if (!generation.Connected)
        {
            throw new InvalidOperationException($"Generation {generation.Id} is still connecting; wait for BeginGeneration to return.");
        }

        call = new CallId(op, generation.Sequence);
        generation.CheckHealth(call, cancellationToken);
        generation.Sequence++;
        var own = new CallHeader(generation.Rank, op, root, length, call.Sequence);
        generation.Headers[generation.Rank] = own;
        if (generation.WorldSize > 1)
        {
            ExchangeHeaders(generation, own, call, cancellationToken);
        }

        Validate(generation, call);
        return generation.WorldSize == 1 ? null : generation;
    }

    /// <summary>An all-gather of the headers around the ring: n - 1 hops of 32 bytes.</summary>
    private static void ExchangeHeaders(RingGeneration generation, in CallHeader own, CallId call, CancellationToken cancellationToken)
    {
        Span<byte> bytes = stackalloc byte[RingWire.HeaderBytes];
        RingWire.WriteHeader(bytes, own);
        generation.Send(bytes, call, onCallerThread: true, cancellationToken);
        var n = generation.WorldSize;
        for (var hop = 1; hop < n; hop++)
        {
            var origin = (generation.Rank - hop + n) % n;
            generation.Receive(bytes, blamed: origin, call, cancellationToken);
            if (!RingWire.TryReadHeader(bytes, out var header) || header.Origin != origin || header.Sequence != call.Sequence)
            {
                generation.Abort(
                    $"protocol error: {generation.Describe(generation.PrevRank)} sent a bad header for {call} "
                    + $"(expected rank {origin}'s call #{call.Sequence}, got rank {header.Origin}'s call #{header.Sequence})",
                    closeLinks: false);
                generation.ThrowIfFaulted();
            }

            generation.Headers[origin] = header;
            if (hop < n - 1)
            {
                generation.Send(bytes, call, onCallerThread: true, cancellationToken);
            }
        }
    }

    /// <summary>Every rank runs this on the same headers, so all of them throw the same error or none does.</summary>
    private static void Validate(RingGeneration generation, CallId call)
    {
        var headers = generation.Headers;
        var first = headers[0];
        bool sameOp = true, sameLength = true, sameRoot = true;
        foreach (var header in headers)
        {
            sameOp &= header.Op == first.Op;
            sameLength &= header.Length == first.Length;
            sameRoot &= header.Root == first.Root;
        }

        if (!sameOp)
        {
            throw new InvalidOperationException(
                $"{CallName(generation, call)}: ranks called different operations ({Describe(headers, h => h.Op.ToString())})");
        }

        if (!sameLength)
        {
            throw new ArgumentException(
                $"{CallName(generation, call)}: buffer lengths differ across ranks ({Describe(headers, h => h.Length.ToString())})", "buffer");
        }

        if (first.Op == CollectiveOp.Broadcast && (!sameRoot || first.Root < 0 || first.Root >= headers.Length))
        {
            throw new ArgumentException(
                $"{CallName(generation, call)}: root must be the same on every rank and in [0, {headers.Length}) "
                + $"({Describe(headers, h => h.Root.ToString())})",
                "root");
        }
    }

    private static string CallName(RingGeneration generation, CallId call) => $"Call #{call.Sequence} in generation {generation.Id}";

    private static string Describe(CallHeader[] headers, Func<CallHeader, string> value)
    {
        var text = new StringBuilder();
        for (var r = 0; r < headers.Length; r++)
        {
            text.Append(r == 0 ? "" : ", ").Append("rank ").Append(r).Append(": ").Append(value(headers[r]));
        }

        return text.ToString();
    }

    private unsafe void RunAllReduce(RingGeneration generation, float* data, int length, CallId call, CancellationToken cancellationToken)
    {
        int n = generation.WorldSize, rank = generation.Rank;
        var segment = _options.SegmentBytes / sizeof(float);
        var staging = MemoryMarshal.Cast<byte, float>(_staging.AsSpan());
        var sender = Sender();
        sender.Start(generation, CollectiveOp.AllReduceSum, (byte*)data, length, root: 0, call);
        try
        {
            for (var step = 0; step < RingSchedule.AllReduceSteps(n); step++)
            {
                var (start, end) = RingReductionOrder.ChunkBounds(length, RingSchedule.ReceiveChunk(step, rank, n), n);
                var reduce = step < RingSchedule.GatherFrom(n);
                for (var from = start; from < end; from += segment)
                {
                    var target = new Span<float>(data + from, Math.Min(segment, end - from));
                    if (reduce)
                    {
                        var partial = staging[..target.Length];
                        generation.Receive(MemoryMarshal.AsBytes(partial), generation.PrevRank, call, cancellationToken);
                        AddInto(target, partial);
                    }
                    else
                    {
                        generation.Receive(MemoryMarshal.AsBytes(target), generation.PrevRank, call, cancellationToken);
                    }

                    sender.Advance();
                }
            }
        }
        catch
        {
            generation.Abort($"rank {rank} left {call} early", closeLinks: false);
            sender.WaitDone();
            throw;
        }

        Finish(generation, sender, call, cancellationToken);
    }

    private unsafe void RunBroadcast(RingGeneration generation, byte* data, int length, int root, CallId call, CancellationToken cancellationToken)
    {
        var sends = generation.Rank == root || generation.NextRank != root;
        var sender = Sender();
        if (sends)
        {
            sender.Start(generation, CollectiveOp.Broadcast, data, length, root, call);
        }

        try
        {
            if (generation.Rank != root)
            {
                var segment = _options.SegmentBytes;
                for (var from = 0; from < length; from += segment)
                {
                    generation.Receive(new Span<byte>(data + from, Math.Min(segment, length - from)), generation.PrevRank, call, cancellationToken);
                    sender.Advance();
                }
            }
        }
        catch
        {
            generation.Abort($"rank {generation.Rank} left {call} early", closeLinks: false);
            if (sends)
            {
                sender.WaitDone();
            }

            throw;
        }

        if (sends)
        {
            Finish(generation, sender, call, cancellationToken);
        }
    }

    /// <summary>
    /// Waits for this rank's sends, still answering cancellation and fault notices (the root of a
    /// broadcast does nothing else). A fault that arrives after this rank received and sent all
    /// its bytes does not fail the call (its result is whole); the next call reports it.
    /// </summary>
    private static void Finish(RingGeneration generation, RingSender sender, CallId call, CancellationToken cancellationToken)
    {
        try
        {
            while (!sender.TryWaitDone(HealthSlice))
            {
                generation.CheckHealth(call, cancellationToken);
            }
        }
        catch
        {
            generation.Abort($"rank {generation.Rank} left {call} early", closeLinks: false);
            sender.WaitDone();
            throw;
        }

        if (!sender.Succeeded)
        {
            generation.ThrowIfFaulted();
            throw new InvalidOperationException("The ring sender stopped without a reason.");
        }
    }
}
