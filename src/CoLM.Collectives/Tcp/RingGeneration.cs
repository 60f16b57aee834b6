using System.Diagnostics;
using System.Net.Sockets;

namespace CoLM.Collectives.Tcp;

/// <summary>
/// One generation of a <see cref="TcpRingCollective"/>: the two ring links (a socket to the next
/// rank, which this rank only writes, and one from the previous rank, which it only reads), the
/// per-call state, and the fault that breaks the generation.
/// <para>
/// Both sockets are non-blocking; every wait is a poll in short slices, so a wait notices an abort,
/// a cancellation, a timeout or a fault notice within one slice. A fault is reported upstream (to
/// the previous rank) on the unused direction of the incoming link; the previous rank notices it
/// on its outgoing link and passes it on, so it travels the whole ring and every rank names the
/// same culprit. A peer that goes away shows as end-of-stream on either link.
/// </para>
/// <para>Over 400 lines on purpose: the sliced waits, the fault notice and the frame reads and
/// writes all act on the same two sockets and one fault slot; split, each part would need the
/// others' invariants restated.</para>
/// </summary>
internal sealed class RingGeneration
{
    private const int SliceMicroseconds = 10_000;

    private readonly object _faultGate = new();
    private readonly long _timeoutTicks;
    private RingFault? _fault;

    public RingGeneration(long id, int rank, IReadOnlyList<string> endpoints, TimeSpan timeout)
    {
        Id = id;
        Rank = rank;
        WorldSize = endpoints.Count;
        Endpoints = [.. endpoints];
        Timeout = timeout;
        NextRank = (rank + 1) % WorldSize;
        PrevRank = (rank - 1 + WorldSize) % WorldSize;
        Headers = new CallHeader[WorldSize];
        _timeoutTicks = timeout == System.Threading.Timeout.InfiniteTimeSpan
            ? long.MaxValue
            : (long)(timeout.TotalSeconds * Stopwatch.Frequency);
    }

    public long Id { get; }

    public int Rank { get; }

    public int WorldSize { get; }

    public int NextRank { get; }

    public int PrevRank { get; }

    public string[] Endpoints { get; }

    public TimeSpan Timeout { get; }

    /// <summary>Outgoing link (this rank writes data); its reverse direction carries fault notices to us.</summary>
    public Socket? Next { get; private set; }

    /// <summary>Incoming link (this rank reads data); its reverse direction carries our fault notices upstream.</summary>
    public Socket? Prev { get; private set; }

    /// <summary>Both links are up (always true for a world of one once begun).</summary>
    public bool Connected { get; private set; }

    /// <summary>The number of the next call; touched by the calling thread only.</summary>
    public long Sequence { get; set; }

    /// <summary>Every rank's header of the current call; touched by the calling thread only.</summary>
    public CallHeader[] Headers { get; }

    public bool IsFaulted => Volatile.Read(ref _fault) is not null;

    public string Describe(int rank) => $"rank {rank} ({Endpoints[rank]})";

    /// <summary>Test hook standing in for a killed process: the links close with no notice.</summary>
    public void CloseWithoutNotice()
    {
        lock (_faultGate)
        {
            _fault ??= new RingFault(RingFaultKind.Aborted, "", -1, "this rank crashed");
            CloseLinks();
        }
    }

    public long Deadline() =>
        _timeoutTicks == long.MaxValue ? long.MaxValue : Stopwatch.GetTimestamp() + _timeoutTicks;

    public void Attach(Socket next, Socket prev)
    {
        lock (_faultGate)
        {
            Next = next;
            Prev = prev;
            Connected = true;
            if (_fault is not null)
            {
                CloseLinks();
            }
        }
    }

    public void MarkConnectedAlone() => Connected = true;

    public void ThrowIfFaulted()
    {
        if (Volatile.Read(ref _fault) is { } fault)
        {
            throw fault.ToException(Id, Timeout);
        }
    }

    /// <summary>The exception for the generation's fault (a fresh one per caller).</summary>
    public Exception FaultException() => Volatile.Read(ref _fault)!.ToException(Id, Timeout);

    /// <summary>
    /// Breaks the generation unless it already is (the first fault wins); reports it upstream.
    /// Returns whether this call set the fault.
    /// </summary>
    public bool Fault(RingFault fault, RingFault? notice = null)
    {
        lock (_faultGate)
        {
            if (_fault is not null)
            {
                return false;
            }

            Volatile.Write(ref _fault, fault);
            NotifyUpstream(notice ?? fault);
            return true;
        }
    }

    public bool Abort(string reason, bool closeLinks)
    {
        var first = Fault(new RingFault(RingFaultKind.Aborted, "", -1, reason));
        if (closeLinks)
        {
            Close();
        }

        return first;
    }

    /// <summary>
    /// This rank's owner broke the generation (abort, dispose, a newer generation): this rank
    /// reports the reason as given, peers learn which rank it came from. Closes the links.
    /// </summary>
    public void AbortByOwner(string reason)
    {
        Fault(
            new RingFault(RingFaultKind.Aborted, "", -1, reason),
            new RingFault(RingFaultKind.Aborted, "", -1, $"{Describe(Rank)} aborted generation {Id}: {reason}"));
        Close();
    }

    /// <summary>Faults the generation for a lost link (unless already faulted) and returns the generation's exception.</summary>
    public Exception Lost(int peer, string detail)
    {
        Abort($"connection to {Describe(peer)} lost: {detail}", closeLinks: false);
        return FaultException();
    }

    /// <summary>Closes both links; waits in progress on them end within a slice.</summary>
    public void Close()
    {
        lock (_faultGate)
        {
            CloseLinks();
        }
    }

    /// <summary>Calling thread: receives exactly dest.Length bytes from the previous rank.</summary>
    public void Receive(Span<byte> dest, int blamed, CallId call, CancellationToken cancellationToken)
    {
        var socket = Prev!;
        var deadline = Deadline();
        while (!dest.IsEmpty)
        {
            int got;
            SocketError error;
            try
            {
                got = socket.Receive(dest, SocketFlags.None, out error);
            }
            catch (ObjectDisposedException)
            {
                throw Lost(PrevRank, "the link was closed");
            }

            if (error == SocketError.Success)
            {
                if (got == 0)
                {
                    throw Lost(PrevRank, "the peer closed the connection");
                }

                dest = dest[got..];
                deadline = Deadline();
            }
            else if (error == SocketError.WouldBlock)
            {
                Await(socket, SelectMode.SelectRead, PrevRank, deadline, blamed, call, onCallerThread: true, cancellationToken);
            }
            else
            {
                throw Lost(PrevRank, error.ToString());
            }
        }
    }

    /// <summary>Sends all of source to the next rank (from the calling thread or the sender thread).</summary>
    public void Send(ReadOnlySpan<byte> source, CallId call, bool onCallerThread, CancellationToken cancellationToken)
    {
        var socket = Next!;
        var deadline = Deadline();
        while (!source.IsEmpty)
        {
            int sent;
            SocketError error;
            try
            {
                sent = socket.Send(source, SocketFlags.None, out error);
            }
            catch (ObjectDisposedException)
            {
                throw Lost(NextRank, "the link was closed");
            }

            if (error == SocketError.Success)
            {
                source = source[sent..];
                deadline = Deadline();
            }
            else if (error == SocketError.WouldBlock)
            {
                Await(socket, SelectMode.SelectWrite, NextRank, deadline, NextRank, call, onCallerThread, cancellationToken);
            }
            else
            {
                throw Lost(NextRank, error.ToString());
            }
        }
    }

    /// <summary>
    /// Calling thread, outside a transfer: fails fast when the generation broke or the next rank
    /// reported a fault or went away.
    /// </summary>
    public void CheckHealth(CallId call, CancellationToken cancellationToken)
    {
        ThrowIfFaulted();
        if (cancellationToken.IsCancellationRequested)
        {
            Cancel(call, cancellationToken);
        }

        CheckNotices();
    }

    /// <summary>Waits until the socket is ready, in slices, checking for faults, cancellation and the deadline.</summary>
    private void Await(
        Socket socket, SelectMode mode, int socketPeer, long deadline, int blamed, CallId call, bool onCallerThread, CancellationToken cancellationToken)
    {
        while (true)
        {
            ThrowIfFaulted();
            if (onCallerThread && cancellationToken.IsCancellationRequested)
            {
                Cancel(call, cancellationToken);
            }

            bool ready;
            try
            {
                ready = socket.Poll(SliceMicroseconds, mode);
            }
            catch (ObjectDisposedException)
            {
                throw Lost(socketPeer, "the link was closed");
            }
            catch (SocketException e)
            {
                throw Lost(socketPeer, e.Message);
            }

            if (ready)
            {
                return;
            }

            if (onCallerThread)
            {
                CheckNotices();
            }

            if (Stopwatch.GetTimestamp() >= deadline)
            {
                Fault(new RingFault(RingFaultKind.Timeout, call.ToString(), blamed, ""));
                ThrowIfFaulted();
            }
        }
    }

    private void Cancel(CallId call, CancellationToken cancellationToken)
    {
        // Peers cannot complete this call without us, so they are told now rather than at their timeout.
        Abort($"rank {Rank} cancelled {call}", closeLinks: false);
        throw new OperationCanceledException(cancellationToken);
    }

    /// <summary>Reads a fault notice (or end-of-stream) from the next rank, if one is waiting.</summary>
    private void CheckNotices()
    {
        var socket = Next;
        if (socket is null)
        {
            return;
        }

        try
        {
            if (!socket.Poll(0, SelectMode.SelectRead))
            {
                return;
            }

            Span<byte> fixedPart = stackalloc byte[RingWire.NoticeFixedBytes];
            if (!ReadNoticeBytes(socket, fixedPart, nothingIsFine: true))
            {
                return;
            }

            if (!RingWire.TryReadNoticeLengths(fixedPart, out var operationBytes, out var reasonBytes))
            {
                throw Lost(NextRank, "it sent bytes that are not a fault notice");
            }

            var whole = new byte[RingWire.NoticeFixedBytes + operationBytes + reasonBytes];
            fixedPart.CopyTo(whole);
            if (!ReadNoticeBytes(socket, whole.AsSpan(RingWire.NoticeFixedBytes), nothingIsFine: false))
            {
                throw Lost(NextRank, "its fault notice was cut short");
            }

            Fault(RingWire.ReadNotice(whole, operationBytes));
            ThrowIfFaulted();
        }
        catch (ObjectDisposedException)
        {
            throw Lost(NextRank, "the link was closed");
        }
        catch (SocketException e)
        {
            throw Lost(NextRank, e.Message);
        }
    }

    /// <summary>Reads a notice's bytes (small, sent in one write); false when nothing was there after all.</summary>
    private bool ReadNoticeBytes(Socket socket, Span<byte> dest, bool nothingIsFine)
    {
        var first = nothingIsFine;
        var deadline = Stopwatch.GetTimestamp() + Stopwatch.Frequency; // a notice is one small write
        while (!dest.IsEmpty)
        {
            var got = socket.Receive(dest, SocketFlags.None, out var error);
            if (error == SocketError.Success)
            {
                if (got == 0)
                {
                    throw Lost(NextRank, "the peer closed the connection");
                }

                dest = dest[got..];
                first = false;
            }
            else if (error == SocketError.WouldBlock)
            {
                if (first)
                {
                    return false;
                }

                if (Stopwatch.GetTimestamp() >= deadline)
                {
                    return false;
                }

                socket.Poll(SliceMicroseconds, SelectMode.SelectRead);
            }
            else
            {
                throw Lost(NextRank, error.ToString());
            }
        }

        return true;
    }

    /// <summary>Under the fault lock: best effort, never blocks (the direction carries nothing else).</summary>
    private void NotifyUpstream(RingFault fault)
    {
        var socket = Prev;
        if (socket is null || !Connected)
        {
            return;
        }

        try
        {
            socket.Send(RingWire.Notice(fault), SocketFlags.None, out _);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The previous rank is gone or the link closed; it learns of the fault some other way.
        }
    }

    private void CloseLinks()
    {
        foreach (var socket in new[] { Next, Prev })
        {
            if (socket is null)
            {
                continue;
            }

            try
            {
                socket.Shutdown(SocketShutdown.Both);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // Already closed or reset.
            }

            socket.Dispose();
        }
    }
}
