using System.Runtime.InteropServices;

namespace CoLM.Collectives.Nccl;

/// <summary>
/// The NCCL and CUDA runtime entry points this backend calls, bound on first use through
/// <see cref="NativeLibrary"/> (dlopen + dlsym) rather than <c>[DllImport]</c>: nothing is loaded
/// until a caller asks for NCCL, and a missing library becomes a sentence in
/// <see cref="LoadResult.Error"/> instead of a <see cref="DllNotFoundException"/> from inside a call.
/// The declarations follow NCCL's public C API (nccl.h, NCCL 2.x) and the CUDA runtime API.
/// </summary>
internal static unsafe class NcclNative
{
    internal const string NcclLibraryName = "libnccl.so.2";

    internal const string NcclPathVariable = "COLM_NCCL_LIBRARY";

    internal const string CudartPathVariable = "COLM_CUDART_LIBRARY";

    internal static readonly string[] DefaultNcclCandidates = [NcclLibraryName, "libnccl.so"];

    internal static readonly string[] DefaultCudartCandidates = ["libcudart.so.12", "libcudart.so.11.0", "libcudart.so"];

    private static readonly Lazy<LoadResult> Default = new(
        () => Load(Candidates(NcclPathVariable, DefaultNcclCandidates), Candidates(CudartPathVariable, DefaultCudartCandidates)),
        LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The process-wide binding; the first access tries to load the libraries, later ones reuse the result.</summary>
    internal static LoadResult Loaded => Default.Value;

    /// <summary>Both bindings, or <see cref="NcclUnavailableException"/> with the loader's explanation.</summary>
    internal static (NcclApi Nccl, CudaApi Cuda) Require()
    {
        var loaded = Loaded;
        if (loaded.Nccl is null || loaded.Cuda is null)
        {
            throw new NcclUnavailableException(loaded.Error);
        }

        return (loaded.Nccl, loaded.Cuda);
    }

    /// <summary>Tries each candidate name (or path) in turn for NCCL and for the CUDA runtime.</summary>
    internal static LoadResult Load(IReadOnlyList<string> ncclCandidates, IReadOnlyList<string> cudartCandidates)
    {
        if (!OperatingSystem.IsLinux())
        {
            return new LoadResult(null, null, $"NCCL is not available: the NCCL backend loads {NcclLibraryName} and runs on Linux only.");
        }

        var errors = new List<string>();
        NcclApi? nccl = null;
        if (TryOpen(ncclCandidates, out var ncclHandle, out var ncclPath, out var ncclLoaderMessage))
        {
            nccl = NcclApi.Bind(ncclHandle, ncclPath, out var missing);
            if (nccl is null)
            {
                errors.Add($"{ncclPath} was loaded but lacks {missing}; the NCCL backend needs NCCL 2.4 or newer (install a current NVIDIA NCCL package).");
            }
        }
        else
        {
            errors.Add(
                $"{NcclLibraryName} could not be loaded (tried {string.Join(", ", ncclCandidates)}). " +
                SearchDescription(NcclPathVariable) +
                $" Loader: {ncclLoaderMessage} " +
                $"Install NVIDIA NCCL, which provides {NcclLibraryName} (Debian/Ubuntu with NVIDIA's CUDA repository: apt-get install libnccl2; " +
                "or pip install nvidia-nccl-cu12 and add its lib directory to LD_LIBRARY_PATH).");
        }

        CudaApi? cuda = null;
        if (TryOpen(cudartCandidates, out var cudartHandle, out var cudartPath, out var cudartLoaderMessage))
        {
            cuda = CudaApi.Bind(cudartHandle, out var missing);
            if (cuda is null)
            {
                errors.Add($"{cudartPath} was loaded but lacks {missing}.");
            }
        }
        else
        {
            errors.Add(
                $"the CUDA runtime could not be loaded (tried {string.Join(", ", cudartCandidates)}). " +
                SearchDescription(CudartPathVariable) +
                $" Loader: {cudartLoaderMessage} " +
                "Install the CUDA runtime (NVIDIA's CUDA repository: apt-get install cuda-cudart-12-x; or pip install nvidia-cuda-runtime-cu12).");
        }

        return errors.Count == 0
            ? new LoadResult(nccl, cuda, "")
            : new LoadResult(nccl, cuda, "NCCL is not available: " + string.Join(" Also: ", errors));
    }

    private static IReadOnlyList<string> Candidates(string variable, string[] defaults)
    {
        var overridePath = Environment.GetEnvironmentVariable(variable);
        return string.IsNullOrWhiteSpace(overridePath) ? defaults : [overridePath];
    }

    private static string SearchDescription(string variable)
    {
        var overridePath = Environment.GetEnvironmentVariable(variable);
        if (!string.IsNullOrWhiteSpace(overridePath))
        {
            return $"{variable} is set, so only that path was tried.";
        }

        var ldLibraryPath = Environment.GetEnvironmentVariable("LD_LIBRARY_PATH");
        var searched = string.IsNullOrEmpty(ldLibraryPath) ? "LD_LIBRARY_PATH (unset)" : $"LD_LIBRARY_PATH ({ldLibraryPath})";
        return $"The dynamic loader searched {searched}, the ld.so cache (/etc/ld.so.conf) and /lib, /usr/lib; " +
               $"set {variable} to the library's full path to use another location.";
    }

    private static bool TryOpen(IReadOnlyList<string> candidates, out nint handle, out string path, out string loaderMessage)
    {
        var reasons = new List<string>();
        foreach (var candidate in candidates)
        {
            try
            {
                handle = NativeLibrary.Load(candidate);
                path = candidate;
                loaderMessage = "";
                return true;
            }
            catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
            {
                reasons.Add(LoaderReason(e.Message));
            }
        }

        handle = 0;
        path = "";
        loaderMessage = reasons.Count == 0 ? "no candidate names." : string.Join("; ", reasons.Distinct()) + ".";
        return false;
    }

    /// <summary>
    /// dlerror's reason ("libnccl.so.2: cannot open shared object file: ...", or a missing
    /// dependency), which .NET appends to its own advice; the whole message where that shape is absent.
    /// </summary>
    private static string LoaderReason(string message)
    {
        var text = string.Join(" ", message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        const string marker = "LD_DEBUG environment variable: ";
        var at = text.LastIndexOf(marker, StringComparison.Ordinal);
        if (at >= 0)
        {
            text = text[(at + marker.Length)..];
        }

        text = text.TrimEnd('.', ' ');
        return text.Length <= 400 ? text : text[..400] + "...";
    }

    private static bool TryExport(nint handle, string name, ref string? missing, out nint address)
    {
        if (NativeLibrary.TryGetExport(handle, name, out address))
        {
            return true;
        }

        missing ??= name;
        return false;
    }

    internal sealed record LoadResult(NcclApi? Nccl, CudaApi? Cuda, string Error);

    /// <summary>ncclResult_t.</summary>
    internal static class Result
    {
        internal const int Success = 0;
        internal const int InProgress = 7;

        internal static string Name(int code) => code switch
        {
            0 => "ncclSuccess",
            1 => "ncclUnhandledCudaError",
            2 => "ncclSystemError",
            3 => "ncclInternalError",
            4 => "ncclInvalidArgument",
            5 => "ncclInvalidUsage",
            6 => "ncclRemoteError",
            7 => "ncclInProgress",
            _ => $"ncclResult {code}",
        };
    }

    /// <summary>ncclDataType_t and ncclRedOp_t values used here.</summary>
    internal static class Types
    {
        internal const int Uint8 = 1;
        internal const int Float32 = 7;
        internal const int Sum = 0;
    }

    /// <summary>ncclUniqueId: an opaque 128-byte struct, passed by value to ncclCommInitRank.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct UniqueIdBlob
    {
        internal const int Size = 128;

        internal fixed byte Bytes[Size];
    }

    /// <summary>Entry points of libnccl.so.2. Every function returns an ncclResult_t.</summary>
    internal sealed class NcclApi
    {
        private NcclApi()
        {
        }

        internal string Path { get; private init; } = "";

        internal delegate* unmanaged<int*, int> GetVersion { get; private init; }

        internal delegate* unmanaged<UniqueIdBlob*, int> GetUniqueId { get; private init; }

        /// <summary>(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank).</summary>
        internal delegate* unmanaged<nint*, int, UniqueIdBlob, int, int> CommInitRank { get; private init; }

        /// <summary>(sendbuff, recvbuff, size_t count, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t).</summary>
        internal delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int> AllReduce { get; private init; }

        /// <summary>(sendbuff, recvbuff, size_t count, ncclDataType_t, int root, ncclComm_t, cudaStream_t).</summary>
        internal delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int> Broadcast { get; private init; }

        internal delegate* unmanaged<nint, int> CommAbort { get; private init; }

        internal delegate* unmanaged<nint, int> CommDestroy { get; private init; }

        /// <summary>(ncclComm_t, ncclResult_t* asyncError).</summary>
        internal delegate* unmanaged<nint, int*, int> CommGetAsyncError { get; private init; }

        /// <summary>Returns a static C string.</summary>
        internal delegate* unmanaged<int, nint> GetErrorString { get; private init; }

        internal static NcclApi? Bind(nint handle, string path, out string? missing)
        {
            missing = null;
            var ok = TryExport(handle, "ncclGetVersion", ref missing, out var getVersion)
                     & TryExport(handle, "ncclGetUniqueId", ref missing, out var getUniqueId)
                     & TryExport(handle, "ncclCommInitRank", ref missing, out var commInitRank)
                     & TryExport(handle, "ncclAllReduce", ref missing, out var allReduce)
                     & TryExport(handle, "ncclBroadcast", ref missing, out var broadcast)
                     & TryExport(handle, "ncclCommAbort", ref missing, out var commAbort)
                     & TryExport(handle, "ncclCommDestroy", ref missing, out var commDestroy)
                     & TryExport(handle, "ncclCommGetAsyncError", ref missing, out var commGetAsyncError)
                     & TryExport(handle, "ncclGetErrorString", ref missing, out var getErrorString);
            if (!ok)
            {
                return null;
            }

            return new NcclApi
            {
                Path = path,
                GetVersion = (delegate* unmanaged<int*, int>)getVersion,
                GetUniqueId = (delegate* unmanaged<UniqueIdBlob*, int>)getUniqueId,
                CommInitRank = (delegate* unmanaged<nint*, int, UniqueIdBlob, int, int>)commInitRank,
                AllReduce = (delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int>)allReduce,
                Broadcast = (delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int>)broadcast,
                CommAbort = (delegate* unmanaged<nint, int>)commAbort,
                CommDestroy = (delegate* unmanaged<nint, int>)commDestroy,
                CommGetAsyncError = (delegate* unmanaged<nint, int*, int>)commGetAsyncError,
                GetErrorString = (delegate* unmanaged<int, nint>)getErrorString,
            };
        }

        internal string ErrorText(int code) =>
            Marshal.PtrToStringUTF8(GetErrorString(code)) ?? "(no description)";
    }

    /// <summary>Entry points of the CUDA runtime (libcudart). Every function returns a cudaError_t (0: success).</summary>
    internal sealed class CudaApi
    {
        internal const int Success = 0;

        /// <summary>cudaErrorNotReady: cudaStreamQuery's "work still pending".</summary>
        internal const int NotReady = 600;

        internal const int MemcpyHostToDevice = 1;

        internal const int MemcpyDeviceToHost = 2;

        private CudaApi()
        {
        }

        internal delegate* unmanaged<int, int> SetDevice { get; private init; }

        internal delegate* unmanaged<int*, int> GetDeviceCount { get; private init; }

        internal delegate* unmanaged<nint*, int> StreamCreate { get; private init; }

        internal delegate* unmanaged<nint, int> StreamQuery { get; private init; }

        internal delegate* unmanaged<nint, int> StreamSynchronize { get; private init; }

        internal delegate* unmanaged<nint, int> StreamDestroy { get; private init; }

        internal delegate* unmanaged<int, nint> GetErrorString { get; private init; }

        /// <summary>(void** devPtr, size_t size): device memory, for tests and tools.</summary>
        internal delegate* unmanaged<nint*, nuint, int> Malloc { get; private init; }

        internal delegate* unmanaged<nint, int> Free { get; private init; }

        /// <summary>(dst, src, size_t count, cudaMemcpyKind).</summary>
        internal delegate* unmanaged<nint, nint, nuint, int, int> Memcpy { get; private init; }

        internal static CudaApi? Bind(nint handle, out string? missing)
        {
            missing = null;
            var ok = TryExport(handle, "cudaSetDevice", ref missing, out var setDevice)
                     & TryExport(handle, "cudaGetDeviceCount", ref missing, out var getDeviceCount)
                     & TryExport(handle, "cudaStreamCreate", ref missing, out var streamCreate)
                     & TryExport(handle, "cudaStreamQuery", ref missing, out var streamQuery)
                     & TryExport(handle, "cudaStreamSynchronize", ref missing, out var streamSynchronize)
                     & TryExport(handle, "cudaStreamDestroy", ref missing, out var streamDestroy)
                     & TryExport(handle, "cudaGetErrorString", ref missing, out var getErrorString)
                     & TryExport(handle, "cudaMalloc", ref missing, out var malloc)
                     & TryExport(handle, "cudaFree", ref missing, out var free)
                     & TryExport(handle, "cudaMemcpy", ref missing, out var memcpy);
            if (!ok)
            {
                return null;
            }

            return new CudaApi
            {
                SetDevice = (delegate* unmanaged<int, int>)setDevice,
                GetDeviceCount = (delegate* unmanaged<int*, int>)getDeviceCount,
                StreamCreate = (delegate* unmanaged<nint*, int>)streamCreate,
                StreamQuery = (delegate* unmanaged<nint, int>)streamQuery,
                StreamSynchronize = (delegate* unmanaged<nint, int>)streamSynchronize,
                StreamDestroy = (delegate* unmanaged<nint, int>)streamDestroy,
                GetErrorString = (delegate* unmanaged<int, nint>)getErrorString,
                Malloc = (delegate* unmanaged<nint*, nuint, int>)malloc,
                Free = (delegate* unmanaged<nint, int>)free,
                Memcpy = (delegate* unmanaged<nint, nint, nuint, int, int>)memcpy,
            };
        }

        internal string ErrorText(int code) =>
            Marshal.PtrToStringUTF8(GetErrorString(code)) ?? "(no description)";

        /// <summary>Number of visible CUDA devices; 0 when the driver reports none or fails.</summary>
        internal int DeviceCount()
        {
            int count;
            return GetDeviceCount(&count) == Success ? count : 0;
        }
    }
}
