namespace CoLM.Collectives.Nccl;

/// <summary>
/// NCCL or the CUDA runtime cannot be loaded here (<see cref="NcclLibrary.TryLoad"/>'s message:
/// which library, where the loader looked, what to install).
/// </summary>
public sealed class NcclUnavailableException(string message) : Exception(message);

/// <summary>
/// An NCCL or CUDA runtime call returned an error. <see cref="Operation"/> names the call
/// (ncclAllReduce, cudaStreamCreate, ...), <see cref="ErrorCode"/> is its ncclResult_t or
/// cudaError_t, and the message carries the library's own description of the code.
/// </summary>
public sealed class NcclException(string operation, int errorCode, string message) : Exception(message)
{
    public string Operation { get; } = operation;

    public int ErrorCode { get; } = errorCode;
}
