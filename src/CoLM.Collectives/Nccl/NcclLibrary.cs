namespace CoLM.Collectives.Nccl;

/// <summary>
/// Whether NCCL can be used in this process. Nothing is loaded until the first call here or the
/// first <see cref="NcclCommunicator"/>; the libraries are looked up once per process:
/// <c>libnccl.so.2</c> (or the path in <c>COLM_NCCL_LIBRARY</c>) and the CUDA runtime
/// <c>libcudart.so.12</c> / <c>.11.0</c> (or <c>COLM_CUDART_LIBRARY</c>), through the dynamic loader's
/// usual search (LD_LIBRARY_PATH, the ld.so cache, /lib, /usr/lib).
/// </summary>
public static class NcclLibrary
{
    /// <summary>The NCCL shared library this backend loads.</summary>
    public const string LibraryName = NcclNative.NcclLibraryName;

    /// <summary>Environment variable naming NCCL's full path, when it is not on the loader's search path.</summary>
    public const string PathVariable = NcclNative.NcclPathVariable;

    /// <summary>Environment variable naming the CUDA runtime's full path.</summary>
    public const string CudaRuntimePathVariable = NcclNative.CudartPathVariable;

    /// <summary>
    /// Loads NCCL and the CUDA runtime (first call only). False with <paramref name="error"/>
    /// saying which library is missing, where it was looked for and what to install.
    /// </summary>
    public static bool TryLoad(out string error)
    {
        var loaded = NcclNative.Loaded;
        error = loaded.Error;
        return loaded.Nccl is not null && loaded.Cuda is not null;
    }

    /// <summary>The loaded NCCL's version (ncclGetVersion); <see cref="NcclUnavailableException"/> when it cannot be loaded.</summary>
    public static unsafe Version Version
    {
        get
        {
            var (nccl, _) = NcclNative.Require();
            int code;
            var result = nccl.GetVersion(&code);
            if (result != NcclNative.Result.Success)
            {
                throw new NcclException("ncclGetVersion", result, $"ncclGetVersion failed: {NcclNative.Result.Name(result)} ({result}): {nccl.ErrorText(result)}");
            }

            return DecodeVersion(code);
        }
    }

    /// <summary>
    /// NCCL_VERSION_CODE: major * 10000 + minor * 100 + patch since 2.9, major * 1000 + minor * 100
    /// + patch before.
    /// </summary>
    internal static Version DecodeVersion(int code) => code >= 10000
        ? new Version(code / 10000, code % 10000 / 100, code % 100)
        : new Version(code / 1000, code % 1000 / 100, code % 100);

    /// <summary>Visible CUDA devices (0 where the runtime is missing or sees none).</summary>
    internal static int CudaDeviceCount() => NcclNative.Loaded.Cuda?.DeviceCount() ?? 0;
}
