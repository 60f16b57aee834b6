namespace CoLM.Collectives.Tcp;

/// <summary>
/// The sending half of a rank's calls, on its own thread, so a rank forwards segment k to the next
/// rank while its calling thread receives (and adds) segment k + 1. The calling thread reports each
/// segment it has finished with <see cref="Advance"/>; a segment that depends on a received one is
/// sent only after that. One job at a time; the calling thread waits for it before returning, so
/// the sender never touches a buffer after its call returned.
/// </summary>
internal sealed unsafe class RingSender : IDisposable
{
    private static readonly TimeSpan Slice = TimeSpan.FromMilliseconds(10);

    private readonly Thread _thread;
    private readonly SemaphoreSlim _work = new(0);
    private readonly object _doneGate = new();
    private readonly ManualResetEventSlim _progress = new(false);
    private readonly int _segmentBytes;
    private long _received;
    private volatile bool _stopping;
    private bool _done = true; // guarded by _doneGate; a plain monitor, so waiting allocates nothing

    private RingGeneration? _generation;
    private CollectiveOp _op;
    private byte* _data;
    private int _length;
    private int _root;
    private CallId _call;

    public RingSender(int segmentBytes, string name)
    {
        _segmentBytes = segmentBytes;
        _thread = new Thread(Loop) { IsBackground = true, Name = name };
        _thread.Start();
    }

    /// <summary>Starts sending this rank's share of a call; length is in elements (floats or bytes).</summary>
    public void Start(RingGeneration generation, CollectiveOp op, byte* data, int length, int root, CallId call)
    {
        _op = op;
        _data = data;
        _length = length;
        _root = root;
        _call = call;
        Volatile.Write(ref _received, 0);
        _progress.Reset();
        lock (_doneGate)
        {
            _done = false;
        }

        Volatile.Write(ref _generation, generation); // last: the thread takes the job by seeing it
        _work.Release();
    }

    /// <summary>The calling thread finished one more received segment (in schedule order).</summary>
    public void Advance()
    {
        Interlocked.Increment(ref _received);
        _progress.Set();
    }

    /// <summary>Waits for the job; a sender thread that is gone (disposed) counts as a failed job.</summary>
    public void WaitDone()
    {
        while (!TryWaitDone(Slice))
        {
        }
    }

    /// <summary>Waits up to <paramref name="timeout"/>; true when the job is over.</summary>
    public bool TryWaitDone(TimeSpan timeout)
    {
        lock (_doneGate)
        {
            if (!_done)
            {
                Monitor.Wait(_doneGate, timeout);
            }

            if (_done)
            {
                return true;
            }
        }

        if (!_thread.IsAlive)
        {
            Succeeded = false;
            return true;
        }

        return false;
    }

    /// <summary>After <see cref="WaitDone"/>: the last job sent all its bytes.</summary>
    public bool Succeeded { get; private set; }

    public void Dispose()
    {
        _stopping = true;
        _work.Release();
        _thread.Join(TimeSpan.FromSeconds(1));
    }

    private void Loop()
    {
        while (true)
        {
            _work.Wait();
            if (_generation is not { } generation)
            {
                if (_stopping)
                {
                    return;
                }

                continue;
            }

            Succeeded = false;
            try
            {
                if (_op == CollectiveOp.AllReduceSum)
                {
                    SendAllReduce(generation);
                }
                else
                {
                    SendBroadcast(generation);
                }

                Succeeded = true;
            }
            catch (Exception e) when (e is CollectiveAbortedException or CollectiveTimeoutException)
            {
                // The generation holds the fault; the calling thread reports it.
            }
            catch (Exception e)
            {
                generation.Abort($"rank {generation.Rank} failed sending {_call}: {e.Message}", closeLinks: false);
            }
            finally
            {
                _data = null;
                Volatile.Write(ref _generation, null);
                lock (_doneGate)
                {
                    _done = true;
                    Monitor.PulseAll(_doneGate);
                }
            }
        }
    }

    private void SendAllReduce(RingGeneration generation)
    {
        int n = generation.WorldSize, rank = generation.Rank;
        var segment = _segmentBytes / sizeof(float);
        long receivedBefore = 0; // segments received in steps before the previous one
        for (var step = 0; step < RingSchedule.AllReduceSteps(n); step++)
        {
            var (start, end) = RingReductionOrder.ChunkBounds(_length, RingSchedule.SendChunk(step, rank, n), n);
            var segments = RingSchedule.Segments(end - start, segment);
            for (var k = 0; k < segments; k++)
            {
                if (step > 0)
                {
                    // What goes out at step s is what came in (and was reduced) at step s - 1.
                    WaitReceived(generation, receivedBefore + k + 1);
                }

                var from = start + (k * segment);
                var count = Math.Min(segment, end - from);
                generation.Send(new ReadOnlySpan<byte>(_data + ((long)from * sizeof(float)), count * sizeof(float)), _call, false, default);
            }

            if (step > 0)
            {
                receivedBefore += segments;
            }
        }
    }

    private void SendBroadcast(RingGeneration generation)
    {
        var isRoot = generation.Rank == _root;
        if (!isRoot && generation.NextRank == _root)
        {
            return; // the end of the chain
        }

        var segments = RingSchedule.Segments(_length, _segmentBytes);
        for (var k = 0; k < segments; k++)
        {
            if (!isRoot)
            {
                WaitReceived(generation, k + 1);
            }

            var from = k * _segmentBytes;
            generation.Send(new ReadOnlySpan<byte>(_data + from, Math.Min(_segmentBytes, _length - from)), _call, false, default);
        }
    }

    private void WaitReceived(RingGeneration generation, long count)
    {
        while (true)
        {
            _progress.Reset();
            if (Volatile.Read(ref _received) >= count)
            {
                return;
            }

            generation.ThrowIfFaulted();
            _progress.Wait(Slice);
        }
    }
}

/// <summary>Which chunk moves at which step; shared by the sending and the receiving side.</summary>
internal static class RingSchedule
{
    /// <summary>Reduce-scatter (n - 1 steps) then all-gather (n - 1 steps).</summary>
    public static int AllReduceSteps(int worldSize) => 2 * (worldSize - 1);

    /// <summary>Steps below this are reduce-scatter: what arrives is added; from it on, copied.</summary>
    public static int GatherFrom(int worldSize) => worldSize - 1;

    /// <summary>
    /// Reduce-scatter step s sends the partial of chunk r - s - 1, so chunk c starts at rank c + 1
    /// and ends complete at rank c (the order of <see cref="RingReductionOrder"/>); all-gather step
    /// s sends chunk r - s, the one completed or received just before.
    /// </summary>
    public static int SendChunk(int step, int rank, int worldSize) =>
        Mod(step < worldSize - 1 ? rank - step - 1 : rank - (step - (worldSize - 1)), worldSize);

    /// <summary>What arrives at step s is what the previous rank sends at step s.</summary>
    public static int ReceiveChunk(int step, int rank, int worldSize) => SendChunk(step, rank - 1 + worldSize, worldSize);

    public static int Segments(int elements, int perSegment) => (elements + perSegment - 1) / perSegment;

    private static int Mod(int value, int modulus) => ((value % modulus) + modulus) % modulus;
}
