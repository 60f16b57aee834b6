using System.Diagnostics;

namespace CoLM.Collectives.Nccl;

/// <summary>
/// One rank of an NCCL communicator on one CUDA device, with its own CUDA stream. Library-level
/// for now: trainer replicas do not place tensors on GPUs yet, so no data plane creates one and
/// runs still use the in-process or TCP backends.
/// <para>
/// It does not implement <see cref="ICollective"/>: that interface reduces <see cref="Span{T}"/>
/// buffers, which are host memory, and promises results bit-identical to
/// <see cref="RingReductionOrder"/>, which NCCL's own reduction order does not give. Here buffers
/// are device pointers, so GPU gradients never come to the host. Once replicas live on GPUs, a
/// CUDA data plane will, per generation: have rank 0 call <see cref="CreateUniqueId"/> and hand
/// <see cref="NcclUniqueId.ToBytes"/> to the coordinator, which sends it to every rank of the
/// generation; have each rank build a communicator from it on its device; and at every step pass
/// the flattened gradient tensor's device address (its data_ptr, float32, contiguous) to
/// <see cref="AllReduceSum"/>. After a membership change the old communicator is aborted and a
/// new one is built from a new id (NCCL communicators have a fixed membership).
/// </para>
/// <para>
/// Operations are enqueued on this communicator's stream and waited for before they return, so
/// the result is in the buffer when the call returns. The caller must make sure the buffer's
/// contents are complete first (work queued on another stream, e.g. torch's, must be synchronized).
/// While waiting, the call polls NCCL's asynchronous error state; a failure, a cancellation or
/// <see cref="Abort"/> from another thread aborts the communicator (ncclCommAbort, the only way to
/// stop NCCL kernels waiting for a dead peer), and every later call throws
/// <see cref="CollectiveAbortedException"/>. The constructor blocks until every rank has joined.
/// </para>
/// </summary>
public sealed unsafe class NcclCommunicator : IDisposable
{
    /// <summary>How long a wait spins before it sleeps between polls of the stream.</summary>
    private static readonly TimeSpan SpinFor = TimeSpan.FromMilliseconds(2);

    private readonly NcclNative.NcclApi _nccl;
    private readonly NcclNative.CudaApi _cuda;
    private readonly object _gate = new();
    private nint _comm;
    private nint _stream;
    private string? _abortReason;
    private bool _disposed;
    private bool _inFlight;

    /// <summary>
    /// Joins rank <paramref name="rank"/> of <paramref name="worldSize"/> on CUDA device
    /// <paramref name="cudaDevice"/> (ncclCommInitRank; blocks until every rank has called it with
    /// the same <paramref name="id"/>). Throws <see cref="NcclUnavailableException"/> where NCCL or
    /// the CUDA runtime cannot be loaded, <see cref="NcclException"/> when a call fails.
    /// </summary>
    public NcclCommunicator(NcclUniqueId id, int rank, int worldSize, int cudaDevice, long generation = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(worldSize, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(rank, worldSize);
        ArgumentOutOfRangeException.ThrowIfNegative(cudaDevice);
        (_nccl, _cuda) = NcclNative.Require();
        Rank = rank;
        WorldSize = worldSize;
        CudaDevice = cudaDevice;
        Generation = generation;

        CheckCuda("cudaSetDevice", _cuda.SetDevice(cudaDevice));
        nint stream;
        CheckCuda("cudaStreamCreate", _cuda.StreamCreate(&stream));
        try
        {
            nint comm;
            CheckNccl("ncclCommInitRank", _nccl.CommInitRank(&comm, worldSize, id.ToNative(), rank));
            _comm = comm;
        }
        catch
        {
            _ = _cuda.StreamDestroy(stream);
            throw;
        }

        _stream = stream;
    }

    public int Rank { get; }

    public int WorldSize { get; }

    public int CudaDevice { get; }

    /// <summary>The membership generation this communicator serves (reported in <see cref="CollectiveAbortedException"/>).</summary>
    public long Generation { get; }

    public bool IsAborted
    {
        get
        {
            lock (_gate)
            {
                return _abortReason is not null;
            }
        }
    }

    /// <summary>
    /// A new rendezvous id (ncclGetUniqueId), made by rank 0 and handed to every rank. Throws
    /// <see cref="NcclUnavailableException"/> where NCCL cannot be loaded.
    /// </summary>
    public static NcclUniqueId CreateUniqueId()
    {
        var (nccl, _) = NcclNative.Require();
        var blob = default(NcclNative.UniqueIdBlob);
        var result = nccl.GetUniqueId(&blob);
        if (result != NcclNative.Result.Success)
        {
            throw new NcclException("ncclGetUniqueId", result,
                $"ncclGetUniqueId failed: {NcclNative.Result.Name(result)} ({result}): {nccl.ErrorText(result)}");
        }

        return NcclUniqueId.FromNative(blob);
    }

    /// <summary>
    /// In-place sum of <paramref name="count"/> float32 values at device address
    /// <paramref name="deviceBuffer"/> across every rank (ncclAllReduce, ncclFloat32, ncclSum).
    /// Returns once the result is in the buffer.
    /// </summary>
    public void AllReduceSum(nint deviceBuffer, long count, CancellationToken cancellationToken = default)
    {
        ValidateBuffer(deviceBuffer, count);
        const string operation = "ncclAllReduce";
        var (comm, stream) = Begin(operation);
        var result = _nccl.AllReduce(deviceBuffer, deviceBuffer, (nuint)count, NcclNative.Types.Float32, NcclNative.Types.Sum, comm, stream);
        Wait(operation, result, cancellationToken);
    }

    /// <summary>
    /// Copies <paramref name="bytes"/> bytes at <paramref name="deviceBuffer"/> from rank
    /// <paramref name="root"/> into every rank's buffer (ncclBroadcast, in place, ncclUint8).
    /// </summary>
    public void Broadcast(nint deviceBuffer, long bytes, int root, CancellationToken cancellationToken = default)
    {
        ValidateBuffer(deviceBuffer, bytes);
        ArgumentOutOfRangeException.ThrowIfNegative(root);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(root, WorldSize);
        const string operation = "ncclBroadcast";
        var (comm, stream) = Begin(operation);
        var result = _nccl.Broadcast(deviceBuffer, deviceBuffer, (nuint)bytes, NcclNative.Types.Uint8, root, comm, stream);
        Wait(operation, result, cancellationToken);
    }

    /// <summary>
    /// Aborts the communicator (ncclCommAbort): kernels waiting for peers stop, a call waiting on
    /// another thread throws <see cref="CollectiveAbortedException"/>, and so does every later
    /// call. Safe from any thread; a second abort does nothing.
    /// </summary>
    public void Abort(string reason = "aborted by the caller")
    {
        lock (_gate)
        {
            AbortLocked(reason);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            if (_comm != 0)
            {
                _ = _cuda.SetDevice(CudaDevice);

                // Destroy waits for queued work; with an operation still in flight (its peer may
                // be gone) abort instead, so disposing never hangs. Failures here have no remedy.
                _ = _inFlight ? _nccl.CommAbort(_comm) : _nccl.CommDestroy(_comm);
                _comm = 0;
            }

            // An operation in flight still uses the stream: its thread releases it (EndLocked).
            if (!_inFlight && _stream != 0)
            {
                _ = _cuda.StreamDestroy(_stream);
                _stream = 0;
            }
        }
    }

    private static void ValidateBuffer(nint deviceBuffer, long count)
    {
        if (deviceBuffer == 0)
        {
            throw new ArgumentException("The device buffer is a null pointer.", nameof(deviceBuffer));
        }

        ArgumentOutOfRangeException.ThrowIfNegative(count);
    }

    /// <summary>
    /// Marks an operation in flight and returns the handles it enqueues on. The enqueue itself runs
    /// outside the lock: NCCL may block there (connecting to peers on first use), and
    /// <see cref="Abort"/> from another thread must still get in to break it.
    /// </summary>
    private (nint Comm, nint Stream) Begin(string operation)
    {
        lock (_gate)
        {
            ThrowIfUnusableLocked(operation);
            if (_inFlight)
            {
                throw new InvalidOperationException($"{operation} on rank {Rank}: another operation of this communicator is still in flight.");
            }

            var error = _cuda.SetDevice(CudaDevice);
            if (error != NcclNative.CudaApi.Success)
            {
                throw CudaFailure("cudaSetDevice", error);
            }

            _inFlight = true;
            return (_comm, _stream);
        }
    }

    /// <summary>The operation is over; where Dispose ran meanwhile, the stream it left is released here.</summary>
    private void EndLocked()
    {
        _inFlight = false;
        if (_disposed && _stream != 0)
        {
            _ = _cuda.StreamDestroy(_stream);
            _stream = 0;
        }
    }

    private void ThrowIfUnusableLocked(string operation)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_abortReason is not null)
        {
            throw new CollectiveAbortedException($"{operation} on rank {Rank}: {_abortReason}", Generation);
        }
    }

    /// <summary>Polls the stream until the operation completes, NCCL reports an error, or the call is cancelled or aborted.</summary>
    private void Wait(string operation, int enqueueResult, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (enqueueResult != NcclNative.Result.Success && !_disposed && _abortReason is null)
            {
                // Refused before anything ran (bad arguments, say): the communicator stays usable.
                EndLocked();
                throw NcclFailure(operation, enqueueResult);
            }
        }

        var started = Stopwatch.GetTimestamp();
        var spin = default(SpinWait);
        while (true)
        {
            lock (_gate)
            {
                if (_disposed || _abortReason is not null)
                {
                    EndLocked();
                    throw new CollectiveAbortedException(
                        $"{operation} on rank {Rank}: {_abortReason ?? "the communicator was disposed"}", Generation);
                }

                var query = _cuda.StreamQuery(_stream);
                if (query == NcclNative.CudaApi.Success)
                {
                    EndLocked();
                    return;
                }

                if (query != NcclNative.CudaApi.NotReady)
                {
                    EndLocked();
                    var failure = CudaFailure($"cudaStreamQuery after {operation}", query);
                    AbortLocked(failure.Message);
                    throw failure;
                }

                int asyncError;
                var result = _nccl.CommGetAsyncError(_comm, &asyncError);
                if (result == NcclNative.Result.Success && asyncError != NcclNative.Result.Success && asyncError != NcclNative.Result.InProgress)
                {
                    EndLocked();
                    var failure = NcclFailure(operation, asyncError);
                    AbortLocked(failure.Message);
                    throw failure;
                }
            }

            if (cancellationToken.IsCancellationRequested)
            {
                lock (_gate)
                {
                    EndLocked();
                    AbortLocked($"{operation} was cancelled");
                }

                cancellationToken.ThrowIfCancellationRequested();
            }

            if (Stopwatch.GetElapsedTime(started) < SpinFor)
            {
                spin.SpinOnce(sleep1Threshold: -1);
            }
            else
            {
                Thread.Sleep(1);
            }
        }
    }

    private void AbortLocked(string reason)
    {
        if (_abortReason is not null)
        {
            return;
        }

        _abortReason = reason;
        if (_comm != 0)
        {
            _ = _cuda.SetDevice(CudaDevice);
            _ = _nccl.CommAbort(_comm); // frees the communicator whatever it returns
            _comm = 0;
        }
    }

    private void CheckNccl(string operation, int result)
    {
        if (result != NcclNative.Result.Success)
        {
            throw NcclFailure(operation, result);
        }
    }

    private void CheckCuda(string operation, int result)
    {
        if (result != NcclNative.CudaApi.Success)
        {
            throw CudaFailure(operation, result);
        }
    }

    private NcclException NcclFailure(string operation, int result) => new(operation, result,
        $"{operation} failed on rank {Rank} of {WorldSize} (CUDA device {CudaDevice}): {NcclNative.Result.Name(result)} ({result}): " +
        $"{_nccl.ErrorText(result)} (NCCL_DEBUG=WARN or INFO prints NCCL's own diagnosis)");

    private NcclException CudaFailure(string operation, int error) => new(operation, error,
        $"{operation} failed on rank {Rank} of {WorldSize} (CUDA device {CudaDevice}): cudaError {error}: {_cuda.ErrorText(error)}");
}
