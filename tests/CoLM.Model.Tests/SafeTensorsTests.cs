using System.Buffers.Binary;
using System.Text;
using CoLM.Model.SafeTensors;
using TorchSharp;
using static TorchSharp.torch;

namespace CoLM.Model.Tests;

/// <summary>A temporary directory removed on dispose.</summary>
internal sealed class SafeTensorsTempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("colm-safetensors-").FullName;

    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>Same dtype, shape and bytes (the expected tensor may be non-contiguous).</summary>
    public static void AssertSame(Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.dtype, actual.dtype);
        Assert.Equal(expected.shape, actual.shape);
        var contiguous = expected.contiguous();
        try
        {
            Assert.Equal(contiguous.bytes.ToArray(), actual.bytes.ToArray());
        }
        finally
        {
            if (!ReferenceEquals(contiguous, expected)) contiguous.Dispose();
        }
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

public sealed class SafeTensorsRoundTripTests
{
    private static List<(string Name, Tensor Tensor)> Sample()
    {
        var generator = new Generator(7);
        return
        [
            ("layers.0.weight", randn([3, 5], generator: generator)),
            ("layers.0.half", randn([4], generator: generator).to_type(ScalarType.Float16)),
            ("layers.1.bf16", randn([2, 3, 2], generator: generator).to_type(ScalarType.BFloat16)),
            ("step", tensor(123456789012345L)),
            ("empty", zeros([0, 5])),
            ("empty_i64", zeros([3, 0], dtype: ScalarType.Int64)),
            ("ids", tensor(new long[] { -1, 0, long.MaxValue, long.MinValue }).reshape(2, 2)),
            ("f64", randn([2], dtype: ScalarType.Float64, generator: generator)),
            ("i32", tensor(new[] { 1, -2, int.MaxValue })),
            ("i16", tensor(new short[] { 7, -7 })),
            ("i8", tensor(new sbyte[] { -128, 127, 0 })),
            ("u8", tensor(new byte[] { 0, 255 })),
            ("mask", tensor(new[] { true, false, true })),
            ("scalar_f32", tensor(3.25f)),
        ];
    }

    [Fact]
    public void Every_dtype_and_shape_round_trips_bit_identically_with_metadata()
    {
        using var dir = new SafeTensorsTempDir();
        string path = dir.File("model.safetensors");
        var tensors = Sample();
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcode \"quoted\"" };
        try
        {
            SafeTensorsWriter.Write(path, tensors, metadata);
            Assert.False(File.Exists(path + ".partial"));

            using var file = SafeTensorsFile.Open(path);
            Assert.Equal(metadata, file.Metadata);
            Assert.Equal(tensors.Select(t => t.Name).Order(StringComparer.Ordinal), file.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
            foreach (var (name, original) in tensors)
            {
                var info = file.Info(name);
                Assert.Equal(original.shape, info.Shape);
                Assert.Equal(SafeTensorDTypes.FromScalarType(original.dtype), info.DType);
                Assert.Equal(original.bytes.ToArray(), file.ReadBytes(name));
                using var read = file.ReadTensor(name);
                Assert.Equal(original.dtype, read.dtype);
                Assert.Equal(original.shape, read.shape);
                Assert.Equal(DeviceType.CPU, read.device_type);
                Assert.Equal(original.bytes.ToArray(), read.bytes.ToArray());
            }
            Assert.Empty(file.Info("step").Shape);
            Assert.Equal(0, file.Info("empty").ByteLength);
        }
        finally
        {
            foreach (var (_, t) in tensors) t.Dispose();
        }
    }

    [Fact]
    public void Header_is_padded_to_eight_bytes_with_spaces_and_data_is_aligned()
    {
        using var dir = new SafeTensorsTempDir();
        string path = dir.File("a.safetensors");
        using var a = ones(3);
        using var b = ones(1, dtype: ScalarType.Int8);
        using var c = ones(1, dtype: ScalarType.Float64);
        SafeTensorsWriter.Write(path, [("a", a), ("b", b), ("c", c)]);

        byte[] bytes = File.ReadAllBytes(path);
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, n % 8);
        string header = Encoding.UTF8.GetString(bytes, 8, (int)n);
        Assert.StartsWith("{", header);
        Assert.EndsWith("}", header.TrimEnd(' '));
        Assert.Equal(8 + n + 12 + 1 + 8, bytes.Length);

        using var file = SafeTensorsFile.Open(path);
        Assert.All(file.Tensors, t => Assert.Equal(0, (file.DataStart + t.Begin) % SafeTensorDTypes.Size(t.DType)));
        Assert.Equal(["c", "a", "b"], file.Tensors.Select(t => t.Name));
    }

    [Fact]
    public void Writing_twice_replaces_the_file_and_is_deterministic()
    {
        using var dir = new SafeTensorsTempDir();
        using var x = arange(10, dtype: ScalarType.Float32);
        using var y = arange(4, dtype: ScalarType.Int64);
        SafeTensorsWriter.Write(dir.File("1.safetensors"), [("x", x), ("y", y)], new Dictionary<string, string> { ["b"] = "2", ["a"] = "1" });
        SafeTensorsWriter.Write(dir.File("2.safetensors"), [("y", y), ("x", x)], new Dictionary<string, string> { ["a"] = "1", ["b"] = "2" });
        Assert.Equal(File.ReadAllBytes(dir.File("1.safetensors")), File.ReadAllBytes(dir.File("2.safetensors")));

        SafeTensorsWriter.Write(dir.File("1.safetensors"), [("x", x)]);
        using var file = SafeTensorsFile.Open(dir.File("1.safetensors"));
        Assert.Equal(["x"], file.Tensors.Select(t => t.Name));
        Assert.Empty(file.Metadata);
    }

    [Fact]
    public void Non_contiguous_and_large_tensors_are_written_and_read_through_several_chunks()
    {
        using var dir = new SafeTensorsTempDir();
        string path = dir.File("big.safetensors");
        using var generator = new Generator(3);
        using var big = randn([3_000_000], generator: generator); // 12 MB: more than one copy chunk
        using var matrix = arange(12, dtype: ScalarType.Float32).reshape(3, 4);
        using var transposed = matrix.t();
        SafeTensorsWriter.Write(path, [("big", big), ("transposed", transposed)]);

        using var file = SafeTensorsFile.Open(path);
        using var readBig = file.ReadTensor("big");
        SafeTensorsTempDir.AssertSame(big, readBig);
        Assert.Equal(big.bytes.ToArray(), readBig.bytes.ToArray());
        using var readT = file.ReadTensor("transposed");
        Assert.Equal(new long[] { 4, 3 }, readT.shape);
        SafeTensorsTempDir.AssertSame(transposed, readT);
    }

    [Fact]
    public void ReadTensor_converts_when_asked()
    {
        using var dir = new SafeTensorsTempDir();
        string path = dir.File("c.safetensors");
        using var source = tensor(new[] { 1.0f, -2.5f, 0.125f }).to_type(ScalarType.BFloat16);
        SafeTensorsWriter.Write(path, [("w", source)]);
        using var file = SafeTensorsFile.Open(path);
        using var asFloat = file.ReadTensor("w", ScalarType.Float32);
        Assert.Equal(ScalarType.Float32, asFloat.dtype);
        Assert.Equal(new[] { 1.0f, -2.5f, 0.125f }, asFloat.data<float>().ToArray());
        using var same = file.ReadTensor("w", ScalarType.BFloat16);
        Assert.Equal(ScalarType.BFloat16, same.dtype);
        Assert.Throws<KeyNotFoundException>(() => file.ReadTensor("missing"));
    }

    [Fact]
    public void Writer_refuses_duplicate_and_reserved_names_and_unsupported_types()
    {
        using var dir = new SafeTensorsTempDir();
        using var a = ones(2);
        using var complex = ones(2, dtype: ScalarType.ComplexFloat32);
        Assert.Throws<ArgumentException>(() => SafeTensorsWriter.Write(dir.File("x"), [("a", a), ("a", a)]));
        Assert.Throws<ArgumentException>(() => SafeTensorsWriter.Write(dir.File("x"), [("__metadata__", a)]));
        Assert.Throws<NotSupportedException>(() => SafeTensorsWriter.Write(dir.File("x"), [("c", complex)]));
        Assert.False(File.Exists(dir.File("x")));
        Assert.False(File.Exists(dir.File("x.partial")));
    }
}

public sealed class SafeTensorsHandBuiltFileTests
{
    /// <summary>Builds a file straight from the format: u64 LE header length, the JSON header, then the data buffer.</summary>
    internal static void WriteRaw(string path, string json, byte[] data, ulong? declaredLength = null)
    {
        byte[] header = Encoding.UTF8.GetBytes(json);
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, declaredLength ?? (ulong)header.Length);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        File.WriteAllBytes(path, bytes);
    }

    [Fact]
    public void A_file_built_byte_by_byte_from_the_format_reads_back()
    {
        using var dir = new SafeTensorsTempDir();
        string path = dir.File("raw.safetensors");
        // Unpadded header, tensors listed out of offset order, metadata in the middle.
        const string json = """{"b":{"dtype":"I16","shape":[3],"data_offsets":[16,22]},"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"h":{"dtype":"BF16","shape":[],"data_offsets":[22,24]}}""";
        var data = new byte[24];
        float[] floats = [1.5f, -2f, 0.25f, 1e30f];
        for (int i = 0; i < floats.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(4 * i), floats[i]);
        short[] shorts = [1, -2, 300];
        for (int i = 0; i < shorts.Length; i++) BinaryPrimitives.WriteInt16LittleEndian(data.AsSpan(16 + 2 * i), shorts[i]);
        BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(22), 0xC040); // bfloat16 -3.0
        WriteRaw(path, json, data);

        using var file = SafeTensorsFile.Open(path);
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal(["w", "b", "h"], file.Tensors.Select(t => t.Name));
        Assert.Equal(8 + Encoding.UTF8.GetByteCount(json), file.DataStart);

        using var w = file.ReadTensor("w");
        Assert.Equal(ScalarType.Float32, w.dtype);
        Assert.Equal(new long[] { 2, 2 }, w.shape);
        Assert.Equal(floats, w.data<float>().ToArray());
        Assert.Equal(-2f, w[0, 1].item<float>());

        using var b = file.ReadTensor("b");
        Assert.Equal(ScalarType.Int16, b.dtype);
        Assert.Equal(shorts, b.data<short>().ToArray());
        using var bLong = file.ReadTensor("b", ScalarType.Int64);
        Assert.Equal(new long[] { 1, -2, 300 }, bLong.data<long>().ToArray());

        using var h = file.ReadTensor("h", ScalarType.Float32);
        Assert.Empty(h.shape);
        Assert.Equal(-3f, h.item<float>());
        Assert.Equal(data.AsSpan(0, 16).ToArray(), file.ReadBytes("w"));
    }

    [Fact]
    public void A_file_with_no_tensors_is_valid()
    {
        using var dir = new SafeTensorsTempDir();
        string path = dir.File("none.safetensors");
        WriteRaw(path, "{}      ", []);
        using var file = SafeTensorsFile.Open(path);
        Assert.Empty(file.Tensors);
        Assert.Empty(file.Metadata);
    }
}

public sealed class SafeTensorsCorruptFileTests
{
    private static SafeTensorsFormatException Refused(string path)
    {
        var e = Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.Open(path).Dispose());
        Assert.StartsWith(path + ": ", e.Message);
        Assert.Equal(path, e.FilePath);
        return e;
    }

    private static SafeTensorsFormatException RefusedRaw(string json, int dataLength, ulong? declaredLength = null)
    {
        using var dir = new SafeTensorsTempDir();
        string path = dir.File("bad.safetensors");
        SafeTensorsHandBuiltFileTests.WriteRaw(path, json, new byte[dataLength], declaredLength);
        return Refused(path);
    }

    private static string Entry(string name, string dtype, string shape, long begin, long end) =>
        $"\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":[{begin},{end}]}}";

    [Fact]
    public void Truncated_data_is_named_truncated()
    {
        using var dir = new SafeTensorsTempDir();
        string path = dir.File("t.safetensors");
        using var a = ones(4);
        using var b = ones(4);
        SafeTensorsWriter.Write(path, [("a", a), ("b", b)]);
        byte[] bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^5]);
        var e = Refused(path);
        Assert.Contains("truncated", e.Message);
        Assert.Contains("32 bytes", e.Message);
    }

    [Fact]
    public void File_cut_inside_the_length_prefix_is_truncated()
    {
        using var dir = new SafeTensorsTempDir();
        string path = dir.File("t.safetensors");
        File.WriteAllBytes(path, [1, 0, 0]);
        Assert.Contains("truncated", Refused(path).Message);
    }

    [Fact]
    public void Header_length_larger_than_the_file_is_refused()
    {
        var e = RefusedRaw("{}", 0, declaredLength: 1000);
        Assert.Contains("header length 1000 is larger than the file", e.Message);
    }

    [Fact]
    public void Header_length_over_the_limit_is_refused()
    {
        var e = RefusedRaw("{}", 0, declaredLength: 200_000_000);
        Assert.Contains("exceeds", e.Message);
    }

    [Fact]
    public void Malformed_json_is_refused()
    {
        Assert.Contains("not valid JSON", RefusedRaw("{\"a\": {\"dtype\": ", 0).Message);
        Assert.Contains("must be a JSON object", RefusedRaw("[1, 2]  ", 0).Message);
    }

    [Fact]
    public void Unknown_dtype_is_refused_naming_the_tensor()
    {
        var e = RefusedRaw("{" + Entry("w", "F8_E4M3", "[2]", 0, 2) + "}", 2);
        Assert.Contains("tensor 'w'", e.Message);
        Assert.Contains("unknown dtype \"F8_E4M3\"", e.Message);
        Assert.Contains("unknown dtype \"f32\"", RefusedRaw("{" + Entry("w", "f32", "[2]", 0, 8) + "}", 8).Message);
    }

    [Fact]
    public void Offsets_inconsistent_with_shape_are_refused()
    {
        var e = RefusedRaw("{" + Entry("w", "F32", "[2]", 0, 12) + "}", 12);
        Assert.Contains("tensor 'w'", e.Message);
        Assert.Contains("span 12 bytes", e.Message);
        Assert.Contains("needs 8", e.Message);
    }

    [Fact]
    public void Bad_shapes_and_offsets_are_refused()
    {
        Assert.Contains("not a non-negative integer", RefusedRaw("{" + Entry("w", "F32", "[-1]", 0, 0) + "}", 0).Message);
        Assert.Contains("not a non-negative integer", RefusedRaw("{" + Entry("w", "F32", "[1.5]", 0, 6) + "}", 6).Message);
        Assert.Contains("begin after end", RefusedRaw("{" + Entry("w", "F32", "[1]", 8, 4) + "}", 8).Message);
        Assert.Contains("not a non-negative integer", RefusedRaw("{" + Entry("w", "F32", "[1]", -4, 0) + "}", 0).Message);
        Assert.Contains("must be [begin, end]", RefusedRaw("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4).Message);
        Assert.Contains("missing 'shape'", RefusedRaw("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4).Message);
        Assert.Contains("too large", RefusedRaw("{" + Entry("w", "F32", "[4611686018427387904, 4]", 0, 4) + "}", 4).Message);
    }

    [Fact]
    public void Overlapping_entries_are_refused()
    {
        var e = RefusedRaw("{" + Entry("a", "F32", "[2]", 0, 8) + "," + Entry("b", "F32", "[2]", 4, 12) + "}", 12);
        Assert.Contains("'a' [0, 8] and 'b' [4, 12] overlap", e.Message);
        var empty = RefusedRaw("{" + Entry("a", "F32", "[2]", 0, 8) + "," + Entry("e", "F32", "[0]", 4, 4) + "}", 8);
        Assert.Contains("overlap", empty.Message);
    }

    [Fact]
    public void A_gap_in_the_buffer_is_refused()
    {
        var e = RefusedRaw("{" + Entry("a", "F32", "[2]", 0, 8) + "," + Entry("b", "F32", "[2]", 16, 24) + "}", 24);
        Assert.Contains("gap", e.Message);
        Assert.Contains("[8, 16)", e.Message);
        Assert.Contains("tensor 'b'", e.Message);
        Assert.Contains("gap", RefusedRaw("{" + Entry("a", "F32", "[2]", 4, 12) + "}", 12).Message);
        var trailing = RefusedRaw("{" + Entry("a", "F32", "[2]", 0, 8) + "}", 12);
        Assert.Contains("[8, 12) after tensor 'a' belong to no tensor", trailing.Message);
    }

    [Fact]
    public void Offsets_beyond_the_buffer_are_refused()
    {
        var e = RefusedRaw("{" + Entry("a", "F32", "[2]", 0, 8) + "," + Entry("b", "F32", "[2]", 64, 72) + "}", 8);
        Assert.Contains("tensor 'b'", e.Message);
        Assert.Contains("beyond the end of the 8-byte data buffer", e.Message);
    }

    [Fact]
    public void Bad_metadata_and_duplicate_names_are_refused()
    {
        Assert.Contains("'__metadata__' entry 'n' must be a string", RefusedRaw("{\"__metadata__\":{\"n\":1}}", 0).Message);
        Assert.Contains("'__metadata__' must be an object", RefusedRaw("{\"__metadata__\":[]}", 0).Message);
        Assert.Contains("'a' more than once", RefusedRaw("{" + Entry("a", "U8", "[1]", 0, 1) + "," + Entry("a", "U8", "[1]", 1, 2) + "}", 2).Message);
    }

    [Fact]
    public void A_file_shortened_after_opening_reports_truncation_on_read()
    {
        using var dir = new SafeTensorsTempDir();
        string path = dir.File("s.safetensors");
        using var a = ones(16);
        SafeTensorsWriter.Write(path, [("a", a)]);
        using var file = SafeTensorsFile.Open(path);
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
            stream.SetLength(stream.Length - 4);
        var e = Assert.Throws<SafeTensorsFormatException>(() => file.ReadBytes("a"));
        Assert.Contains("truncated", e.Message);
    }
}

public sealed class ShardedSafeTensorsTests
{
    private static void WriteIndex(string directory, IEnumerable<(string Name, string Shard)> map)
    {
        var body = string.Join(",", map.Select(m => $"\"{m.Name}\":\"{m.Shard}\""));
        File.WriteAllText(Path.Combine(directory, ShardedSafeTensors.IndexFileName),
            "{\"metadata\":{\"total_size\":64},\"weight_map\":{" + body + "}}");
    }

    [Fact]
    public void Two_shards_round_trip_through_the_index()
    {
        using var dir = new SafeTensorsTempDir();
        using var a = arange(6, dtype: ScalarType.Float32).reshape(2, 3);
        using var b = arange(4, dtype: ScalarType.Int64);
        using var c = ones(2, 2).to_type(ScalarType.BFloat16);
        SafeTensorsWriter.Write(dir.File("model-00001-of-00002.safetensors"), [("a", a), ("b", b)]);
        SafeTensorsWriter.Write(dir.File("model-00002-of-00002.safetensors"), [("c", c)]);
        WriteIndex(dir.Path, [("a", "model-00001-of-00002.safetensors"), ("b", "model-00001-of-00002.safetensors"), ("c", "model-00002-of-00002.safetensors")]);

        using var model = ShardedSafeTensors.Open(dir.Path);
        Assert.Equal(["a", "b", "c"], model.Names.Order(StringComparer.Ordinal));
        Assert.Equal(2, model.Files.Count);
        using var readA = model.ReadTensor("a");
        SafeTensorsTempDir.AssertSame(a, readA);
        using var readB = model.ReadTensor("b");
        SafeTensorsTempDir.AssertSame(b, readB);
        using var readC = model.ReadTensor("c", ScalarType.Float32);
        Assert.Equal(ScalarType.Float32, readC.dtype);
        Assert.Equal(new[] { 1f, 1f, 1f, 1f }, readC.data<float>().ToArray());
        Assert.Equal(SafeTensorDType.BF16, model.Info("c").DType);
        Assert.Throws<KeyNotFoundException>(() => model.ReadTensor("d"));
    }

    [Fact]
    public void A_single_model_file_is_opened_directly()
    {
        using var dir = new SafeTensorsTempDir();
        using var a = ones(3);
        SafeTensorsWriter.Write(dir.File(ShardedSafeTensors.SingleFileName), [("a", a)]);
        using var model = ShardedSafeTensors.Open(dir.Path);
        Assert.Equal(["a"], model.Names);
        using var read = model.ReadTensor("a");
        SafeTensorsTempDir.AssertSame(a, read);
    }

    [Fact]
    public void A_missing_shard_is_refused_naming_the_index_and_shard()
    {
        using var dir = new SafeTensorsTempDir();
        using var a = ones(3);
        SafeTensorsWriter.Write(dir.File("model-00001-of-00002.safetensors"), [("a", a)]);
        WriteIndex(dir.Path, [("a", "model-00001-of-00002.safetensors"), ("b", "model-00002-of-00002.safetensors")]);
        var e = Assert.Throws<SafeTensorsFormatException>(() => ShardedSafeTensors.Open(dir.Path).Dispose());
        Assert.StartsWith(dir.File(ShardedSafeTensors.IndexFileName) + ": ", e.Message);
        Assert.Contains("shard 'model-00002-of-00002.safetensors'", e.Message);
        Assert.Contains("does not exist", e.Message);
    }

    [Fact]
    public void A_name_mapped_to_a_shard_that_lacks_it_is_refused()
    {
        using var dir = new SafeTensorsTempDir();
        using var a = ones(3);
        using var b = ones(3);
        SafeTensorsWriter.Write(dir.File("model-00001-of-00002.safetensors"), [("a", a)]);
        SafeTensorsWriter.Write(dir.File("model-00002-of-00002.safetensors"), [("b", b)]);
        WriteIndex(dir.Path, [("a", "model-00002-of-00002.safetensors"), ("b", "model-00002-of-00002.safetensors")]);
        var e = Assert.Throws<SafeTensorsFormatException>(() => ShardedSafeTensors.Open(dir.Path).Dispose());
        Assert.StartsWith(dir.File(ShardedSafeTensors.IndexFileName) + ": ", e.Message);
        Assert.Contains("tensor 'a' is mapped to shard 'model-00002-of-00002.safetensors'", e.Message);
    }

    [Fact]
    public void Bad_indexes_and_empty_directories_are_refused()
    {
        using var dir = new SafeTensorsTempDir();
        Assert.Throws<FileNotFoundException>(() => ShardedSafeTensors.Open(dir.Path));
        string index = dir.File(ShardedSafeTensors.IndexFileName);

        File.WriteAllText(index, "{\"weight_map\": ");
        Assert.Contains("not valid JSON", Assert.Throws<SafeTensorsFormatException>(() => ShardedSafeTensors.Open(dir.Path)).Message);
        File.WriteAllText(index, "{\"metadata\": {}}");
        Assert.Contains("missing 'weight_map'", Assert.Throws<SafeTensorsFormatException>(() => ShardedSafeTensors.Open(dir.Path)).Message);
        File.WriteAllText(index, "{\"weight_map\": {\"a\": \"../escape.safetensors\"}}");
        Assert.Contains("not a plain file name", Assert.Throws<SafeTensorsFormatException>(() => ShardedSafeTensors.Open(dir.Path)).Message);

        // A corrupt shard is reported against the shard itself.
        File.WriteAllBytes(dir.File("s.safetensors"), [9, 9]);
        File.WriteAllText(index, "{\"weight_map\": {\"a\": \"s.safetensors\"}}");
        var e = Assert.Throws<SafeTensorsFormatException>(() => ShardedSafeTensors.Open(dir.Path));
        Assert.StartsWith(dir.File("s.safetensors") + ": ", e.Message);
    }
}
