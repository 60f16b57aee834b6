using System.Buffers.Binary;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using TorchSharp;

namespace CoLM.Model.SafeTensors;

/// <summary>
/// A validated safetensors file, read lazily: <see cref="Open"/> reads and checks only the header against the
/// file length; tensor data is read on demand with positional reads.
/// </summary>
public sealed class SafeTensorsFile : IDisposable
{
    /// <summary>Largest header accepted (the reference implementation's limit).</summary>
    public const long MaxHeaderLength = 100_000_000;

    private const string MetadataKey = "__metadata__";

    private readonly SafeFileHandle _handle;
    private readonly Dictionary<string, SafeTensorInfo> _byName;

    private SafeTensorsFile(string path, SafeFileHandle handle, long dataStart, IReadOnlyDictionary<string, string> metadata, IReadOnlyList<SafeTensorInfo> tensors)
    {
        Path = path;
        _handle = handle;
        DataStart = dataStart;
        Metadata = metadata;
        Tensors = tensors;
        _byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>The file this was opened from.</summary>
    public string Path { get; }

    /// <summary>Absolute file position of the data buffer (8 + header length).</summary>
    public long DataStart { get; }

    /// <summary>The header's "__metadata__" entries (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Tensors in data-offset order.</summary>
    public IReadOnlyList<SafeTensorInfo> Tensors { get; }

    /// <summary>Whether the file holds a tensor of that name.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>The header entry of one tensor.</summary>
    public SafeTensorInfo Info(string name) =>
        _byName.TryGetValue(name, out var info) ? info : throw new KeyNotFoundException($"{Path}: no tensor named '{name}'");

    /// <summary>Opens and validates a safetensors file; throws <see cref="SafeTensorsFormatException"/> naming the problem.</summary>
    public static SafeTensorsFile Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors reading assumes a little-endian machine");
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        try
        {
            long fileLength = RandomAccess.GetLength(handle);
            if (fileLength < 8)
                throw new SafeTensorsFormatException(path, $"file is {fileLength} bytes, too short to hold the 8-byte header length (truncated)");
            Span<byte> prefix = stackalloc byte[8];
            ReadExactly(handle, path, prefix, 0);
            ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
            if (headerLength > MaxHeaderLength)
                throw new SafeTensorsFormatException(path, $"header length {headerLength} exceeds the {MaxHeaderLength}-byte limit");
            if ((long)headerLength > fileLength - 8)
                throw new SafeTensorsFormatException(path, $"header length {headerLength} is larger than the file ({fileLength} bytes; at most {fileLength - 8} available after the length prefix)");
            var header = new byte[headerLength];
            ReadExactly(handle, path, header, 8);
            long dataStart = 8 + (long)headerLength;
            var (metadata, tensors) = ParseHeader(path, header, fileLength - dataStart);
            return new SafeTensorsFile(path, handle, dataStart, metadata, tensors);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>The raw little-endian bytes of one tensor.</summary>
    public byte[] ReadBytes(string name)
    {
        var info = Info(name);
        if (info.ByteLength > Array.MaxLength)
            throw new NotSupportedException($"{Path}: tensor '{name}' is {info.ByteLength} bytes, too large for one array; use ReadTensor");
        var bytes = new byte[info.ByteLength];
        ReadExactly(_handle, Path, bytes, DataStart + info.Begin);
        return bytes;
    }

    /// <summary>
    /// A new CPU tensor with the stored dtype (F16 as Float16, BF16 as BFloat16 ...) and shape, converted to
    /// <paramref name="convertTo"/> when given. The caller owns (disposes) it.
    /// </summary>
    public torch.Tensor ReadTensor(string name, torch.ScalarType? convertTo = null)
    {
        var info = Info(name);
        var stored = SafeTensorDTypes.ToScalarType(info.DType);
        var tensor = torch.empty(info.Shape, dtype: stored, device: torch.CPU);
        try
        {
            TensorChunks.ForEach(tensor, (chunk, offset) => ReadExactly(_handle, Path, chunk, DataStart + info.Begin + offset));
            if (convertTo is { } target && target != stored)
            {
                var converted = tensor.to_type(target);
                tensor.Dispose();
                return converted;
            }
            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    public void Dispose() => _handle.Dispose();

    private static void ReadExactly(SafeFileHandle handle, string path, Span<byte> destination, long position)
    {
        while (!destination.IsEmpty)
        {
            int read = RandomAccess.Read(handle, destination, position);
            if (read == 0)
                throw new SafeTensorsFormatException(path, $"file is truncated: it ended at byte {position} while {destination.Length} more bytes were expected");
            destination = destination[read..];
            position += read;
        }
    }

    /// <summary>Parses and validates a header against the length of the data buffer that follows it.</summary>
    internal static (IReadOnlyDictionary<string, string> Metadata, IReadOnlyList<SafeTensorInfo> Tensors) ParseHeader(string path, byte[] header, long dataLength)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new SafeTensorsFormatException(path, $"header is not valid JSON: {e.Message}");
        }
        catch (ArgumentException e)
        {
            throw new SafeTensorsFormatException(path, $"header is not valid UTF-8 JSON: {e.Message}");
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new SafeTensorsFormatException(path, $"header must be a JSON object, found {root.ValueKind}");

            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var tensors = new List<SafeTensorInfo>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in root.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                    throw new SafeTensorsFormatException(path, $"header names '{property.Name}' more than once");
                if (property.Name == MetadataKey)
                    ReadMetadata(path, property.Value, metadata);
                else
                    tensors.Add(ReadEntry(path, property.Name, property.Value));
            }

            CheckLayout(path, tensors, dataLength);
            tensors.Sort(static (a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
            return (metadata, tensors);
        }
    }

    private static void ReadMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new SafeTensorsFormatException(path, $"'{MetadataKey}' must be an object of strings, found {value.ValueKind}");
        foreach (var entry in value.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw new SafeTensorsFormatException(path, $"'{MetadataKey}' entry '{entry.Name}' must be a string, found {entry.Value.ValueKind}");
            if (!metadata.TryAdd(entry.Name, entry.Value.GetString()!))
                throw new SafeTensorsFormatException(path, $"'{MetadataKey}' names '{entry.Name}' more than once");
        }
    }

    private static SafeTensorInfo ReadEntry(string path, string name, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new SafeTensorsFormatException(path, $"tensor '{name}': entry must be an object with dtype, shape and data_offsets, found {value.ValueKind}");

        if (!value.TryGetProperty("dtype", out var dtypeElement))
            throw new SafeTensorsFormatException(path, $"tensor '{name}': missing 'dtype'");
        if (dtypeElement.ValueKind != JsonValueKind.String || !SafeTensorDTypes.TryParse(dtypeElement.GetString()!, out var dtype))
            throw new SafeTensorsFormatException(path, $"tensor '{name}': unknown dtype {dtypeElement.GetRawText()} (known: {string.Join(", ", Enum.GetNames<SafeTensorDType>())})");

        if (!value.TryGetProperty("shape", out var shapeElement))
            throw new SafeTensorsFormatException(path, $"tensor '{name}': missing 'shape'");
        if (shapeElement.ValueKind != JsonValueKind.Array)
            throw new SafeTensorsFormatException(path, $"tensor '{name}': 'shape' must be an array of non-negative integers, found {shapeElement.ValueKind}");
        var shape = new long[shapeElement.GetArrayLength()];
        int i = 0;
        foreach (var dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out long size) || size < 0)
                throw new SafeTensorsFormatException(path, $"tensor '{name}': 'shape' dimension {i} is {dim.GetRawText()}, not a non-negative integer");
            shape[i++] = size;
        }

        if (!value.TryGetProperty("data_offsets", out var offsetsElement))
            throw new SafeTensorsFormatException(path, $"tensor '{name}': missing 'data_offsets'");
        if (offsetsElement.ValueKind != JsonValueKind.Array || offsetsElement.GetArrayLength() != 2)
            throw new SafeTensorsFormatException(path, $"tensor '{name}': 'data_offsets' must be [begin, end], found {offsetsElement.GetRawText()}");
        long begin = ReadOffset(path, name, offsetsElement[0], "begin");
        long end = ReadOffset(path, name, offsetsElement[1], "end");
        if (begin > end)
            throw new SafeTensorsFormatException(path, $"tensor '{name}': data_offsets [{begin}, {end}] have begin after end");

        long expected;
        try
        {
            expected = checked(SafeTensorDTypes.ElementCount(shape) * SafeTensorDTypes.Size(dtype));
        }
        catch (OverflowException)
        {
            throw new SafeTensorsFormatException(path, $"tensor '{name}': shape [{string.Join(", ", shape)}] is too large");
        }
        if (end - begin != expected)
            throw new SafeTensorsFormatException(path, $"tensor '{name}': data_offsets [{begin}, {end}] span {end - begin} bytes, but {dtype} shape [{string.Join(", ", shape)}] needs {expected}");

        return new SafeTensorInfo(name, dtype, shape, begin, end);
    }

    private static long ReadOffset(string path, string name, JsonElement element, string which)
    {
        if (element.ValueKind != JsonValueKind.Number || !element.TryGetInt64(out long offset) || offset < 0)
            throw new SafeTensorsFormatException(path, $"tensor '{name}': data_offsets {which} is {element.GetRawText()}, not a non-negative integer");
        return offset;
    }

    /// <summary>Entries must not overlap, must tile the data buffer from 0 without gaps, and must end exactly at its end.</summary>
    private static void CheckLayout(string path, List<SafeTensorInfo> tensors, long dataLength)
    {
        var ordered = tensors.OrderBy(t => t.Begin).ThenBy(t => t.End).ThenBy(t => t.Name, StringComparer.Ordinal).ToList();

        // Overlap: an entry that begins before the furthest end seen so far shares bytes with an earlier one
        // (an empty entry only when it sits strictly inside another).
        SafeTensorInfo? furthest = null;
        foreach (var t in ordered)
        {
            if (furthest is not null && t.Begin < furthest.End && (t.ByteLength > 0 || t.Begin > furthest.Begin))
                throw new SafeTensorsFormatException(path, $"tensors '{furthest.Name}' [{furthest.Begin}, {furthest.End}] and '{t.Name}' [{t.Begin}, {t.End}] overlap");
            if (t.ByteLength > 0 && (furthest is null || t.End > furthest.End)) furthest = t;
        }

        long required = ordered.Count == 0 ? 0 : ordered.Max(t => t.End);
        bool contiguous = true;
        long cursor = 0;
        foreach (var t in ordered)
        {
            if (t.Begin != cursor) { contiguous = false; break; }
            cursor = t.End;
        }

        if (required > dataLength)
        {
            if (contiguous)
                throw new SafeTensorsFormatException(path, $"file is truncated: the header describes {required} bytes of tensor data but only {dataLength} follow the header");
            var beyond = ordered.First(t => t.End > dataLength);
            throw new SafeTensorsFormatException(path, $"tensor '{beyond.Name}': data_offsets [{beyond.Begin}, {beyond.End}] lie beyond the end of the {dataLength}-byte data buffer");
        }

        cursor = 0;
        string previous = "the start of the data buffer";
        foreach (var t in ordered)
        {
            if (t.Begin != cursor)
                throw new SafeTensorsFormatException(path, $"gap in the data buffer: bytes [{cursor}, {t.Begin}) between {previous} and tensor '{t.Name}' belong to no tensor");
            cursor = t.End;
            previous = $"tensor '{t.Name}'";
        }
        if (cursor != dataLength)
            throw new SafeTensorsFormatException(path, $"gap in the data buffer: bytes [{cursor}, {dataLength}) after {previous} belong to no tensor");
    }
}
