using System.Runtime.InteropServices;
using CoLM.Collectives;
using CoLM.Collectives.Nccl;
using Xunit;
using Xunit.Abstractions;

namespace CoLM.Collectives.Tests;

/// <summary>Runs only where NCCL, the CUDA runtime and enough CUDA devices are present.</summary>
public sealed class RequiresNcclFactAttribute : FactAttribute
{
    public RequiresNcclFactAttribute(int devices = 1)
    {
        if (!NcclLibrary.TryLoad(out _))
        {
            Skip = $"needs libnccl.so.2 and {devices} CUDA device(s): NCCL or the CUDA runtime cannot be loaded here";
        }
        else if (NcclLibrary.CudaDeviceCount() < devices)
        {
            Skip = $"needs libnccl.so.2 and {devices} CUDA device(s): {NcclLibrary.CudaDeviceCount()} visible";
        }
    }
}

/// <summary>Runs only where NCCL cannot be loaded: checks what a caller sees there.</summary>
public sealed class RequiresNoNcclFactAttribute : FactAttribute
{
    public RequiresNoNcclFactAttribute()
    {
        if (NcclLibrary.TryLoad(out _))
        {
            Skip = "libnccl.so.2 and the CUDA runtime load here; this checks the message where they are missing";
        }
    }
}

public sealed class NcclTests(ITestOutputHelper output)
{
    [Fact]
    public void A_missing_library_is_explained_what_was_searched_and_what_to_install()
    {
        var result = NcclNative.Load(["libnccl-colm-test-missing.so.2"], ["libcudart-colm-test-missing.so.12"]);

        Assert.Null(result.Nccl);
        Assert.Null(result.Cuda);
        Assert.StartsWith("NCCL is not available: ", result.Error, StringComparison.Ordinal);
        Assert.Contains("libnccl.so.2 could not be loaded (tried libnccl-colm-test-missing.so.2)", result.Error, StringComparison.Ordinal);
        Assert.Contains("LD_LIBRARY_PATH", result.Error, StringComparison.Ordinal);
        Assert.Contains(NcclLibrary.PathVariable, result.Error, StringComparison.Ordinal);
        Assert.Contains("Install NVIDIA NCCL", result.Error, StringComparison.Ordinal);
        Assert.Contains("apt-get install libnccl2", result.Error, StringComparison.Ordinal);
        Assert.Contains("the CUDA runtime could not be loaded (tried libcudart-colm-test-missing.so.12)", result.Error, StringComparison.Ordinal);
        Assert.Contains("Loader: ", result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("\n", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void A_library_without_the_entry_points_is_named_with_the_first_one_it_lacks()
    {
        // glibc loads everywhere this runs and exports neither NCCL nor CUDA functions.
        var result = NcclNative.Load(["libc.so.6"], ["libc.so.6"]);

        Assert.Null(result.Nccl);
        Assert.Null(result.Cuda);
        Assert.Contains("libc.so.6 was loaded but lacks ncclGetVersion", result.Error, StringComparison.Ordinal);
        Assert.Contains("libc.so.6 was loaded but lacks cudaSetDevice", result.Error, StringComparison.Ordinal);
    }

    [RequiresNoNcclFact]
    public void TryLoad_is_false_with_the_clear_message_where_NCCL_is_missing()
    {
        Assert.False(NcclLibrary.TryLoad(out var error));
        output.WriteLine(error);
        Assert.StartsWith("NCCL is not available: ", error, StringComparison.Ordinal);
        Assert.True(
            error.Contains("libnccl.so.2 could not be loaded", StringComparison.Ordinal)
            || error.Contains("the CUDA runtime could not be loaded", StringComparison.Ordinal),
            error);
        Assert.Contains("LD_LIBRARY_PATH", error, StringComparison.Ordinal);

        // The answer is cached: asking again neither loads again nor changes the message.
        Assert.False(NcclLibrary.TryLoad(out var again));
        Assert.Equal(error, again);
    }

    [RequiresNoNcclFact]
    public void Using_NCCL_where_it_is_missing_throws_NcclUnavailableException_with_that_message()
    {
        NcclLibrary.TryLoad(out var error);

        var create = Assert.Throws<NcclUnavailableException>(() => NcclCommunicator.CreateUniqueId());
        var join = Assert.Throws<NcclUnavailableException>(() => new NcclCommunicator(default, rank: 0, worldSize: 2, cudaDevice: 0));
        var version = Assert.Throws<NcclUnavailableException>(() => NcclLibrary.Version);

        Assert.Equal(error, create.Message);
        Assert.Equal(error, join.Message);
        Assert.Equal(error, version.Message);
    }

    [Theory]
    [InlineData(-1, 2, 0)]
    [InlineData(2, 2, 0)]
    [InlineData(0, 0, 0)]
    [InlineData(0, 2, -1)]
    public void The_constructor_checks_its_arguments_before_loading_anything(int rank, int worldSize, int device)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new NcclCommunicator(default, rank, worldSize, device));
    }

    [Fact]
    public void A_unique_id_round_trips_its_bytes_and_compares_by_value()
    {
        var bytes = Enumerable.Range(0, NcclUniqueId.Size).Select(i => (byte)(i * 7)).ToArray();

        var id = NcclUniqueId.FromBytes(bytes);
        var copy = NcclUniqueId.FromBytes(id.ToBytes());

        Assert.Equal(bytes, id.ToBytes());
        Assert.Equal(id, copy);
        Assert.Equal(id.GetHashCode(), copy.GetHashCode());
        Assert.True(id == copy);
        Assert.NotEqual(default, id);
        Assert.Equal(new byte[NcclUniqueId.Size], default(NcclUniqueId).ToBytes());
        Assert.StartsWith("NcclUniqueId(00070E151C232A31", id.ToString(), StringComparison.Ordinal);

        // Neither the caller's array nor the returned one aliases the id.
        bytes[0] = 99;
        id.ToBytes()[1] = 99;
        Assert.Equal(copy, id);
        Assert.Equal(0, id.AsSpan()[0]);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(127)]
    [InlineData(129)]
    [InlineData(256)]
    public void A_unique_id_refuses_any_length_but_128(int length)
    {
        var error = Assert.Throws<ArgumentException>(() => NcclUniqueId.FromBytes(new byte[length]));
        Assert.Contains($"128 bytes, not {length}", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(22304, "2.23.4")]
    [InlineData(21903, "2.19.3")]
    [InlineData(2708, "2.7.8")]
    public void Version_codes_decode_both_before_and_after_2_9(int code, string expected)
    {
        Assert.Equal(Version.Parse(expected), NcclLibrary.DecodeVersion(code));
    }

    [RequiresNcclFact(devices: 1)]
    public void One_rank_on_one_GPU_reduces_broadcasts_and_aborts()
    {
        Assert.True(NcclLibrary.Version >= new Version(2, 4));
        var id = NcclCommunicator.CreateUniqueId();
        Assert.NotEqual(default, id);
        var values = Enumerable.Range(0, 1037).Select(i => (float)i).ToArray();
        using var buffer = DeviceBuffer.Of<float>(0, values);
        using var communicator = new NcclCommunicator(id, rank: 0, worldSize: 1, cudaDevice: 0);

        communicator.AllReduceSum(buffer.Address, values.Length);
        communicator.Broadcast(buffer.Address, values.Length * sizeof(float), root: 0);

        Assert.Equal(values, buffer.Read<float>(values.Length));
        communicator.Abort("test abort");
        Assert.True(communicator.IsAborted);
        var error = Assert.Throws<CollectiveAbortedException>(() => communicator.AllReduceSum(buffer.Address, values.Length));
        Assert.Contains("test abort", error.Message, StringComparison.Ordinal);
    }

    [RequiresNcclFact(devices: 2)]
    public void Two_ranks_on_two_GPUs_sum_and_broadcast()
    {
        const int worldSize = 2;
        const int length = (1 << 20) + 17;
        var id = NcclCommunicator.CreateUniqueId(); // rank 0's job; the coordinator would hand the bytes on
        var wire = id.ToBytes();
        var results = new float[worldSize][];
        var broadcasts = new byte[worldSize][];

        var ranks = Enumerable.Range(0, worldSize).Select(rank => Task.Factory.StartNew(
            () =>
            {
                // Small integers: the float sum is exact whatever order NCCL adds in.
                var values = Enumerable.Range(0, length).Select(i => (float)((i % 1000) * (rank + 1))).ToArray();
                using var buffer = DeviceBuffer.Of<float>(rank, values);
                var bytes = Enumerable.Range(0, 4099).Select(i => (byte)(i + (rank * 31))).ToArray();
                using var byteBuffer = DeviceBuffer.Of<byte>(rank, bytes);
                using var communicator = new NcclCommunicator(NcclUniqueId.FromBytes(wire), rank, worldSize, cudaDevice: rank);

                communicator.AllReduceSum(buffer.Address, length);
                communicator.Broadcast(byteBuffer.Address, bytes.Length, root: 1);

                results[rank] = buffer.Read<float>(length);
                broadcasts[rank] = byteBuffer.Read<byte>(bytes.Length);
            },
            TaskCreationOptions.LongRunning)).ToArray();

        Assert.True(Task.WaitAll(ranks, TimeSpan.FromSeconds(120)), "a rank hung");
        var expected = Enumerable.Range(0, length).Select(i => (float)((i % 1000) * 3)).ToArray();
        var fromRank1 = Enumerable.Range(0, 4099).Select(i => (byte)(i + 31)).ToArray();
        for (var rank = 0; rank < worldSize; rank++)
        {
            Assert.Equal(expected, results[rank]);
            Assert.Equal(fromRank1, broadcasts[rank]);
        }
    }

    /// <summary>Device memory on one GPU, for the GPU tests (cudaMalloc / cudaMemcpy / cudaFree).</summary>
    private sealed unsafe class DeviceBuffer : IDisposable
    {
        private readonly NcclNative.CudaApi _cuda;
        private readonly int _device;

        private DeviceBuffer(NcclNative.CudaApi cuda, int device, nint address)
        {
            _cuda = cuda;
            _device = device;
            Address = address;
        }

        public nint Address { get; }

        public static DeviceBuffer Of<T>(int device, T[] values)
            where T : unmanaged
        {
            var (_, cuda) = NcclNative.Require();
            Check(cuda, cuda.SetDevice(device));
            var bytes = (nuint)(values.Length * sizeof(T));
            nint address;
            Check(cuda, cuda.Malloc(&address, bytes));
            fixed (T* source = values)
            {
                Check(cuda, cuda.Memcpy(address, (nint)source, bytes, NcclNative.CudaApi.MemcpyHostToDevice));
            }

            return new DeviceBuffer(cuda, device, address);
        }

        public T[] Read<T>(int length)
            where T : unmanaged
        {
            var values = new T[length];
            Check(_cuda, _cuda.SetDevice(_device));
            fixed (T* target = values)
            {
                Check(_cuda, _cuda.Memcpy((nint)target, Address, (nuint)(length * sizeof(T)), NcclNative.CudaApi.MemcpyDeviceToHost));
            }

            return values;
        }

        public void Dispose()
        {
            _ = _cuda.SetDevice(_device);
            _ = _cuda.Free(Address);
        }

        private static void Check(NcclNative.CudaApi cuda, int error)
        {
            if (error != NcclNative.CudaApi.Success)
            {
                throw new ExternalException($"CUDA error {error}: {cuda.ErrorText(error)}");
            }
        }
    }
}
