using System.Diagnostics;
using System.Net.Sockets;

namespace CoLM.Collectives.Tcp;

/// <summary>
/// Forming the ring links of a generation: an acceptor thread that reads every incoming
/// connection's hello and parks it until a generation claims it, and the connect/accept pair run
/// by <see cref="BeginGeneration"/>. Everything here is synchronous on dedicated threads, so
/// forming a ring does not depend on a free thread-pool thread.
/// <para>Over 400 lines on purpose: the acceptor, the connect with retries and the handshake are
/// one protocol (hello, acknowledgement, parking by generation) and read best together.</para>
/// </summary>
public sealed partial class TcpRingCollective
{
    private const int SliceMicroseconds = 20_000;

    private void Connect(RingGeneration fresh, CancellationToken cancellationToken)
    {
        var deadline = fresh.Deadline();
        using var stopConnecting = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var attempt = new ConnectAttempt();
        var connector = new Thread(() =>
        {
            try
            {
                attempt.Socket = ConnectNext(fresh, deadline, stopConnecting.Token);
            }
            catch (Exception e)
            {
                attempt.Error = e;
                attempt.Failed = true;
            }
        })
        {
            IsBackground = true,
            Name = $"ring connect {LocalEndpoint}",
        };
        connector.Start();

        Socket? prev = null;
        Exception? acceptError = null;
        try
        {
            prev = AcceptPrev(fresh, deadline, attempt, cancellationToken);
        }
        catch (Exception e)
        {
            acceptError = e;
            stopConnecting.Cancel();
        }

        connector.Join();
        var next = attempt.Socket;
        if (acceptError is null && attempt.Error is null && prev is not null && next is not null)
        {
            Configure(prev);
            Configure(next);
            fresh.Attach(next, prev);
            fresh.ThrowIfFaulted(); // aborted or superseded while connecting
            return;
        }

        prev?.Dispose();
        next?.Dispose();
        throw FailConnect(fresh, acceptError, attempt.Error, cancellationToken);
    }

    /// <summary>Records why a generation could not connect (its calls throw it) and makes the exception to throw now.</summary>
    private static Exception FailConnect(RingGeneration fresh, Exception? acceptError, Exception? connectError, CancellationToken cancellationToken)
    {
        var operation = $"BeginGeneration({fresh.Id}) as rank {fresh.Rank} of {fresh.WorldSize}";
        if (fresh.IsFaulted)
        {
            return fresh.FaultException();
        }

        if (cancellationToken.IsCancellationRequested)
        {
            fresh.Abort($"rank {fresh.Rank} cancelled {operation}", closeLinks: false);
            return new OperationCanceledException(cancellationToken);
        }

        var other = new[] { connectError, acceptError }
            .FirstOrDefault(e => e is not null and not TimeoutException and not OperationCanceledException);
        if (other is not null)
        {
            var reason = other is CollectiveAbortedException aborted ? aborted.Reason : $"{operation} failed: {other.Message}";
            fresh.Abort(reason, closeLinks: false);
            return other is ArgumentException ? other : fresh.FaultException();
        }

        var missing = new List<int>();
        if (acceptError is TimeoutException)
        {
            missing.Add(fresh.PrevRank);
        }

        if (connectError is TimeoutException && !missing.Contains(fresh.NextRank))
        {
            missing.Add(fresh.NextRank);
        }

        if (missing.Count > 0)
        {
            var error = new CollectiveTimeoutException(operation, fresh.Id, missing, fresh.Timeout);
            fresh.Abort(error.Message, closeLinks: false);
            return error;
        }

        fresh.Abort($"{operation} failed", closeLinks: false);
        return fresh.FaultException();
    }

    /// <summary>Connects to the next rank and completes the handshake; retries while it is not listening yet.</summary>
    private static Socket ConnectNext(RingGeneration fresh, long deadline, CancellationToken cancellationToken)
    {
        var target = RingEndpoint.Parse(fresh.Endpoints[fresh.NextRank]);
        while (true)
        {
            CheckWait(fresh, deadline, cancellationToken);
            var socket = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { Blocking = false, NoDelay = true };
            try
            {
                ConnectWithin(socket, target, deadline, fresh, cancellationToken);
                Span<byte> hello = stackalloc byte[RingWire.HelloBytes];
                RingWire.WriteHello(hello, fresh.Id, fresh.Rank, fresh.WorldSize);
                if (socket.Send(hello) != hello.Length)
                {
                    throw new SocketException((int)SocketError.NoBufferSpaceAvailable);
                }

                if (!ReceiveWithin(socket, hello, deadline, fresh, cancellationToken))
                {
                    throw new CollectiveAbortedException(
                        $"{fresh.Describe(fresh.NextRank)} refused the connection for generation {fresh.Id}: "
                        + "it has begun a newer generation or expects a different membership",
                        fresh.Id);
                }

                if (!RingWire.TryReadHello(hello, out var generation, out var rank, out var worldSize)
                    || generation != fresh.Id || rank != fresh.NextRank || worldSize != fresh.WorldSize)
                {
                    throw new CollectiveAbortedException(
                        $"{fresh.Describe(fresh.NextRank)} answered the handshake for generation {fresh.Id} "
                        + $"as rank {rank} of {worldSize} in generation {generation}",
                        fresh.Id);
                }

                return socket;
            }
            catch (SocketException)
            {
                // Not listening yet, or reset: try again until the deadline.
                socket.Dispose();
                cancellationToken.WaitHandle.WaitOne(TimeSpan.FromMilliseconds(20));
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
    }

    private static void CheckWait(RingGeneration fresh, long deadline, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        fresh.ThrowIfFaulted();
        if (Stopwatch.GetTimestamp() >= deadline)
        {
            throw new TimeoutException();
        }
    }

    /// <summary>A non-blocking connect, waited for in slices.</summary>
    private static void ConnectWithin(Socket socket, System.Net.IPEndPoint target, long deadline, RingGeneration fresh, CancellationToken cancellationToken)
    {
        try
        {
            socket.Connect(target);
            return;
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress or SocketError.AlreadyInProgress)
        {
            // Completes below.
        }

        while (!socket.Poll(SliceMicroseconds, SelectMode.SelectWrite))
        {
            CheckWait(fresh, deadline, cancellationToken);
        }

        var error = (SocketError)(int)socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)!;
        if (error != SocketError.Success)
        {
            throw new SocketException((int)error);
        }
    }

    /// <summary>Reads exactly dest.Length bytes by the deadline; false on end-of-stream.</summary>
    private static bool ReceiveWithin(Socket socket, Span<byte> dest, long deadline, RingGeneration fresh, CancellationToken cancellationToken)
    {
        while (!dest.IsEmpty)
        {
            CheckWait(fresh, deadline, cancellationToken);
            if (!socket.Poll(SliceMicroseconds, SelectMode.SelectRead))
            {
                continue;
            }

            var got = socket.Receive(dest, SocketFlags.None, out var error);
            if (error == SocketError.WouldBlock)
            {
                continue;
            }

            if (error is SocketError.ConnectionReset or SocketError.ConnectionAborted || (error == SocketError.Success && got == 0))
            {
                return false;
            }

            if (error != SocketError.Success)
            {
                throw new SocketException((int)error);
            }

            dest = dest[got..];
        }

        return true;
    }

    /// <summary>Waits for the previous rank's hello for this generation and acknowledges it.</summary>
    private Socket AcceptPrev(RingGeneration fresh, long deadline, ConnectAttempt connecting, CancellationToken cancellationToken)
    {
        PendingLink link;
        lock (_gate)
        {
            while (true)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                fresh.ThrowIfFaulted();
                cancellationToken.ThrowIfCancellationRequested();
                if (connecting.Failed)
                {
                    // The other half failed (refused, bad endpoint): no point waiting for this one.
                    throw new OperationCanceledException("connecting to the next rank failed");
                }

                // Hellos for this generation from the wrong rank or world size are refused.
                Dispose(TakePending(p => p.Generation == fresh.Id && (p.Rank != fresh.PrevRank || p.WorldSize != fresh.WorldSize)));
                var found = _pending.FindIndex(p => p.Generation == fresh.Id);
                if (found >= 0)
                {
                    link = _pending[found];
                    _pending.RemoveAt(found);
                    break;
                }

                if (Stopwatch.GetTimestamp() >= deadline)
                {
                    throw new TimeoutException();
                }

                Monitor.Wait(_gate, TimeSpan.FromMilliseconds(20));
            }
        }

        try
        {
            Span<byte> ack = stackalloc byte[RingWire.HelloBytes];
            RingWire.WriteHello(ack, fresh.Id, fresh.Rank, fresh.WorldSize);
            if (link.Socket.Send(ack) != ack.Length)
            {
                throw new SocketException((int)SocketError.NoBufferSpaceAvailable);
            }

            return link.Socket;
        }
        catch
        {
            link.Socket.Dispose();
            throw;
        }
    }

    /// <summary>Under the lock: removes and returns the pending links that match.</summary>
    private List<PendingLink> TakePending(Predicate<PendingLink> match)
    {
        var taken = _pending.FindAll(match);
        _pending.RemoveAll(match);
        return taken;
    }

    /// <summary>
    /// The acceptor thread: accepts connections and reads their hellos, all non-blocking in one
    /// select loop, until the collective is disposed; then closes the listener.
    /// </summary>
    private void AcceptLoop()
    {
        var unread = new List<IncomingHello>();
        var ready = new List<Socket>();
        try
        {
            while (!Volatile.Read(ref _disposed))
            {
                ready.Clear();
                ready.Add(_listener);
                ready.AddRange(unread.Select(hello => hello.Socket));
                Socket.Select(ready, null, null, SliceMicroseconds);
                foreach (var socket in ready)
                {
                    if (socket == _listener)
                    {
                        AcceptWaiting(unread);
                    }
                    else
                    {
                        ReadHello(unread.Find(hello => hello.Socket == socket)!, unread);
                    }
                }

                var now = Stopwatch.GetTimestamp();
                foreach (var late in unread.FindAll(hello => now >= hello.Deadline))
                {
                    unread.Remove(late);
                    late.Socket.Dispose();
                }
            }
        }
        finally
        {
            _listener.Dispose();
            unread.ForEach(hello => hello.Socket.Dispose());
        }
    }

    private void AcceptWaiting(List<IncomingHello> unread)
    {
        var limit = _options.Timeout == Timeout.InfiniteTimeSpan || _options.Timeout > TimeSpan.FromSeconds(10)
            ? TimeSpan.FromSeconds(10)
            : _options.Timeout;
        while (true)
        {
            Socket socket;
            try
            {
                socket = _listener.Accept();
            }
            catch (SocketException)
            {
                return; // nothing more waiting (or the connection was reset before we took it)
            }

            socket.Blocking = false;
            unread.Add(new IncomingHello(socket, Stopwatch.GetTimestamp() + (long)(limit.TotalSeconds * Stopwatch.Frequency)));
        }
    }

    /// <summary>
    /// Reads what arrived of a hello. A complete hello of a generation older than the newest this
    /// rank began is stale and refused (closed); the others wait for a generation to claim them.
    /// </summary>
    private void ReadHello(IncomingHello hello, List<IncomingHello> unread)
    {
        var got = hello.Socket.Receive(hello.Bytes.AsSpan(hello.Read), SocketFlags.None, out var error);
        if (error == SocketError.WouldBlock)
        {
            return;
        }

        if (error != SocketError.Success || got == 0)
        {
            unread.Remove(hello);
            hello.Socket.Dispose();
            return;
        }

        hello.Read += got;
        if (hello.Read < hello.Bytes.Length)
        {
            return;
        }

        unread.Remove(hello);
        var valid = RingWire.TryReadHello(hello.Bytes, out var generation, out var rank, out var worldSize);
        lock (_gate)
        {
            if (!_disposed && valid && generation >= _latestGeneration)
            {
                _pending.Add(new PendingLink(hello.Socket, generation, rank, worldSize));
                Monitor.PulseAll(_gate);
                return;
            }
        }

        hello.Socket.Dispose();
    }

    /// <summary>An accepted connection whose hello was read, not yet claimed by a generation.</summary>
    private sealed record PendingLink(Socket Socket, long Generation, int Rank, int WorldSize);

    /// <summary>An accepted connection whose hello is still arriving.</summary>
    private sealed class IncomingHello(Socket socket, long deadline)
    {
        public Socket Socket { get; } = socket;

        public long Deadline { get; } = deadline;

        public byte[] Bytes { get; } = new byte[RingWire.HelloBytes];

        public int Read { get; set; }
    }

    /// <summary>The connector thread's outcome.</summary>
    private sealed class ConnectAttempt
    {
        private volatile bool _failed;

        public Socket? Socket { get; set; }

        public Exception? Error { get; set; }

        public bool Failed
        {
            get => _failed;
            set => _failed = value;
        }
    }
}
