using System.Buffers;
using System.Buffers.Binary;
using System.Text.Json;
using TorchSharp;

namespace CoLM.Model.SafeTensors;

/// <summary>
/// Writes safetensors files: header padded with spaces to a multiple of 8 bytes, data contiguous with no gaps,
/// tensors ordered by element size (largest first, so every tensor is aligned to its element size) then by name.
/// </summary>
public static class SafeTensorsWriter
{
    /// <summary>
    /// Writes <paramref name="tensors"/> (any device, any layout; copied to CPU one at a time) to
    /// <paramref name="path"/> + ".partial", then renames it over <paramref name="path"/>.
    /// </summary>
    public static void Write(string path, IEnumerable<(string Name, torch.Tensor Tensor)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors writing assumes a little-endian machine");

        var entries = Plan(tensors.ToList());
        byte[] header = BuildHeader(entries, metadata);

        string partial = path + ".partial";
        try
        {
            using (var stream = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 1 << 20))
            {
                Span<byte> prefix = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
                stream.Write(prefix);
                stream.Write(header);
                foreach (var entry in entries) WriteData(stream, entry.Tensor);
                stream.Flush(flushToDisk: true);
            }
            File.Move(partial, path, overwrite: true);
        }
        catch
        {
            try { File.Delete(partial); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    private sealed record Entry(SafeTensorInfo Info, torch.Tensor Tensor);

    private static List<Entry> Plan(List<(string Name, torch.Tensor Tensor)> tensors)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, tensor) in tensors)
        {
            ArgumentNullException.ThrowIfNull(name);
            ArgumentNullException.ThrowIfNull(tensor);
            if (name == "__metadata__") throw new ArgumentException("'__metadata__' is reserved and cannot name a tensor", nameof(tensors));
            if (!names.Add(name)) throw new ArgumentException($"tensor name '{name}' appears more than once", nameof(tensors));
        }

        var ordered = tensors
            .Select(t => (t.Name, t.Tensor, DType: SafeTensorDTypes.FromScalarType(t.Tensor.dtype)))
            .OrderByDescending(t => SafeTensorDTypes.Size(t.DType))
            .ThenBy(t => t.Name, StringComparer.Ordinal);
        var entries = new List<Entry>(tensors.Count);
        long offset = 0;
        foreach (var (name, tensor, dtype) in ordered)
        {
            long[] shape = tensor.shape;
            long length = checked(SafeTensorDTypes.ElementCount(shape) * SafeTensorDTypes.Size(dtype));
            entries.Add(new Entry(new SafeTensorInfo(name, dtype, shape, offset, offset + length), tensor));
            offset += length;
        }
        return entries;
    }

    private static byte[] BuildHeader(List<Entry> entries, IReadOnlyDictionary<string, string>? metadata)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata is not null)
            {
                json.WriteStartObject("__metadata__");
                foreach (var (key, value) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                    json.WriteString(key, value);
                json.WriteEndObject();
            }
            foreach (var (info, _) in entries)
            {
                json.WriteStartObject(info.Name);
                json.WriteString("dtype", SafeTensorDTypes.HeaderName(info.DType));
                json.WriteStartArray("shape");
                foreach (long dim in info.Shape) json.WriteNumberValue(dim);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(info.Begin);
                json.WriteNumberValue(info.End);
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndObject();
        }

        int padded = (buffer.WrittenCount + 7) / 8 * 8;
        var header = new byte[padded];
        buffer.WrittenSpan.CopyTo(header);
        header.AsSpan(buffer.WrittenCount).Fill((byte)' ');
        return header;
    }

    private static void WriteData(FileStream stream, torch.Tensor tensor)
    {
        // Each step may hand back the same wrapper (already on CPU / contiguous); dispose only what was created here.
        using var detached = tensor.detach();
        var cpu = detached.cpu();
        try
        {
            var contiguous = cpu.contiguous();
            try
            {
                TensorChunks.ForEach(contiguous, (chunk, _) => stream.Write(chunk));
            }
            finally
            {
                if (!ReferenceEquals(contiguous, cpu)) contiguous.Dispose();
            }
        }
        finally
        {
            if (!ReferenceEquals(cpu, detached)) cpu.Dispose();
        }
    }
}
