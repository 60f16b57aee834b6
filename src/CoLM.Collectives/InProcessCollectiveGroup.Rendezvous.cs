using System.Diagnostics;

namespace CoLM.Collectives;

/// <summary>The rendezvous behind every call: arrive, first barrier, work, second barrier.</summary>
public sealed partial class InProcessCollectiveGroup
{
    internal void Execute(int rank, CollectiveOp op, nint data, int length, int root, CancellationToken cancellationToken)
    {
        // Registered outside the lock: disposing a registration waits for a running callback, and
        // the callback takes the lock.
        using var wake = cancellationToken.CanBeCanceled ? cancellationToken.UnsafeRegister(WakeAll, this) : default;
        var deadline = _timeout == Timeout.InfiniteTimeSpan
            ? long.MaxValue
            : Stopwatch.GetTimestamp() + (long)(_timeout.TotalSeconds * Stopwatch.Frequency);

        GenerationState generation;
        ExchangeSlot slot;
        lock (_gate)
        {
            generation = _current;
            slot = Arrive(generation, rank, op, data, length, root, cancellationToken);
            if (slot.Arrived == WorldSize)
            {
                slot.Start(generation.Generation);
                Monitor.PulseAll(_gate);
            }
            else
            {
                AwaitStart(generation, slot, rank, deadline, cancellationToken);
            }

            if (slot.HasError)
            {
                generation.InFlight[rank] = false;
                throw slot.CreateError();
            }
        }

        try
        {
            Work(slot, rank);
        }
        finally
        {
            AwaitFinish(generation, slot, rank);
        }
    }

    private static string CallName(CollectiveOp op, long sequence) => $"{op} call #{sequence}";

    private static int MillisecondsUntil(long deadline, long now)
    {
        if (deadline == long.MaxValue)
        {
            return Timeout.Infinite;
        }

        // Rounded up so a wait never ends just before the deadline and spins on zero-length waits.
        var ms = ((deadline - now) * 1000 + Stopwatch.Frequency - 1) / Stopwatch.Frequency;
        return (int)Math.Clamp(ms, 1, int.MaxValue - 1);
    }

    /// <summary>Under the lock: joins this rank to its next call of the generation.</summary>
    private ExchangeSlot Arrive(
        GenerationState generation, int rank, CollectiveOp op, nint data, int length, int root, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (generation.Fault is { } fault)
        {
            throw fault();
        }

        if (generation.InFlight[rank])
        {
            throw new InvalidOperationException(
                $"Rank {rank} already has a collective call in flight on another thread; each rank is one thread.");
        }

        var sequence = generation.NextSequence[rank];
        if (cancellationToken.IsCancellationRequested)
        {
            // Peers cannot complete this call without us, so they are told now rather than at their timeout.
            Break(generation, $"rank {rank} cancelled {CallName(op, sequence)}");
            throw new OperationCanceledException(cancellationToken);
        }

        generation.NextSequence[rank] = sequence + 1;
        var slot = generation.Slots[sequence & 1];
        if (slot.Sequence != sequence)
        {
            slot.Reset(sequence);
        }

        slot.Arrive(rank, op, data, length, root);
        generation.InFlight[rank] = true;
        return slot;
    }

    /// <summary>Under the lock: first barrier, interruptible by abort, timeout and cancellation.</summary>
    private void AwaitStart(GenerationState generation, ExchangeSlot slot, int rank, long deadline, CancellationToken cancellationToken)
    {
        // Started is checked first: once every rank has arrived, the call runs on all of them even if
        // the generation breaks meanwhile, so no rank is left with a half-reduced buffer.
        var interrupted = false;
        while (!slot.Started)
        {
            if (generation.Fault is null && (interrupted || cancellationToken.IsCancellationRequested))
            {
                // Peers cannot complete this call without us, so they are told now rather than at their timeout.
                var why = interrupted ? "was interrupted in" : "cancelled";
                Break(generation, $"rank {rank} {why} {CallName(slot.Op, slot.Sequence)}");
                generation.InFlight[rank] = false;
                throw interrupted ? new ThreadInterruptedException() : new OperationCanceledException(cancellationToken);
            }

            var now = Stopwatch.GetTimestamp();
            if (generation.Fault is null && now >= deadline)
            {
                // The first rank to time out names the missing ranks for everyone, so every rank
                // reports the same thing.
                var missing = slot.MissingRanks();
                var call = CallName(slot.Op, slot.Sequence);
                var id = generation.Generation;
                var timeout = _timeout;
                generation.FaultOnce(() => new CollectiveTimeoutException(call, id, missing, timeout));
                Monitor.PulseAll(_gate);
            }

            if (generation.Fault is { } fault)
            {
                generation.InFlight[rank] = false;
                ReRaise(interrupted);
                throw fault();
            }

            interrupted |= WaitReportingInterrupt(MillisecondsUntil(deadline, now));
        }

        // The call started anyway and must run to the end; the interrupt hits the thread's next wait.
        ReRaise(interrupted);
    }

    /// <summary>Outside the lock: this rank's chunk of the work, on every rank's buffer.</summary>
    private void Work(ExchangeSlot slot, int rank)
    {
        if (WorldSize == 1 || slot.Length == 0)
        {
            return;
        }

        if (slot.Op == CollectiveOp.AllReduceSum)
        {
            var (start, end) = RingReductionOrder.ChunkBounds(slot.Length, rank, WorldSize);
            ChunkKernels.SumInRingOrder(slot.Pointers, rank, start, end);
        }
        else
        {
            var (start, end) = ChunkKernels.Bounds(slot.Length, rank, WorldSize, sizeof(byte));
            ChunkKernels.CopyFromRoot(slot.Pointers, slot.Root, start, end);
        }
    }

    /// <summary>
    /// Second barrier. Deliberately not interruptible by abort, timeout, cancellation or
    /// Thread.Interrupt: peers may still be writing into this rank's pinned buffer, and each needs
    /// only one pass over its chunk. An interrupt is held back until the call is over.
    /// </summary>
    private void AwaitFinish(GenerationState generation, ExchangeSlot slot, int rank)
    {
        var interrupted = false;
        EnterReportingInterrupt(ref interrupted);
        try
        {
            slot.Finished++;
            if (slot.Finished == WorldSize)
            {
                Monitor.PulseAll(_gate);
            }

            while (slot.Finished < WorldSize)
            {
                interrupted |= WaitReportingInterrupt(Timeout.Infinite);
            }

            generation.InFlight[rank] = false;
        }
        finally
        {
            Monitor.Exit(_gate);
        }

        ReRaise(interrupted);
    }

    private static void ReRaise(bool interrupted)
    {
        if (interrupted)
        {
            Thread.CurrentThread.Interrupt();
        }
    }

    private void EnterReportingInterrupt(ref bool interrupted)
    {
        var taken = false;
        while (!taken)
        {
            try
            {
                Monitor.Enter(_gate, ref taken);
            }
            catch (ThreadInterruptedException)
            {
                interrupted = true;
            }
        }
    }

    /// <summary>
    /// Monitor.Wait that reports Thread.Interrupt instead of throwing it, so the caller decides when
    /// leaving is safe for the peers that may hold its buffer's address.
    /// </summary>
    private bool WaitReportingInterrupt(int milliseconds)
    {
        try
        {
            Monitor.Wait(_gate, milliseconds);
            return false;
        }
        catch (ThreadInterruptedException)
        {
            return true;
        }
    }
}
