using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Runtime.InteropServices;
using System.Text;

namespace CoLM.Cluster.Serialization;

/// <summary>
/// Appends little-endian values to a growing buffer. Arrays are a 32-bit count followed by the
/// elements; numeric arrays are copied in one block (bit for bit, NaN payloads included).
/// A count of -1 stands for a null array or a default <see cref="ImmutableArray{T}"/>, and a
/// length of -1 for a null string, so every value reads back exactly as it was written.
/// </summary>
internal sealed class PayloadWriter
{
    public const int NullLength = -1;

    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private byte[] _buffer;
    private int _length;

    public PayloadWriter(int capacity = 256) => _buffer = new byte[Math.Max(capacity, 16)];

    public int Length => _length;

    public byte[] ToArray() => _buffer.AsSpan(0, _length).ToArray();

    public void WriteByte(byte value) => Take(1)[0] = value;

    public void WriteBool(bool value) => WriteByte(value ? (byte)1 : (byte)0);

    public void WriteInt32(int value) => BinaryPrimitives.WriteInt32LittleEndian(Take(4), value);

    public void WriteInt64(long value) => BinaryPrimitives.WriteInt64LittleEndian(Take(8), value);

    public void WriteUInt64(ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(Take(8), value);

    public void WriteDouble(double value) => BinaryPrimitives.WriteDoubleLittleEndian(Take(8), value);

    public void WriteTimeSpan(TimeSpan value) => WriteInt64(value.Ticks);

    public void WriteNullableUInt64(ulong? value)
    {
        WriteBool(value.HasValue);
        if (value.HasValue) WriteUInt64(value.Value);
    }

    /// <summary>A required string; null here is a bug in the sender, reported before anything is sent.</summary>
    public void WriteString(string value, string field)
    {
        if (value is null) throw new ArgumentNullException(field, $"{field} is null but is not optional");
        WriteNullableString(value);
    }

    public void WriteNullableString(string? value)
    {
        if (value is null)
        {
            WriteInt32(NullLength);
            return;
        }
        int count = Utf8.GetByteCount(value);
        WriteInt32(count);
        Utf8.GetBytes(value, Take(count));
    }

    public void WriteInt32s(ImmutableArray<int> values) => WriteBlock(values.IsDefault ? default : values.AsSpan(), values.IsDefault);

    public void WriteFloats(ImmutableArray<float> values) => WriteBlock(values.IsDefault ? default : values.AsSpan(), values.IsDefault);

    public void WriteFloats(float[]? values) => WriteBlock<float>(values, values is null);

    public void WriteBools(bool[]? values) => WriteBlock<bool>(values, values is null);

    public void WriteStrings(ImmutableArray<string> values)
    {
        if (values.IsDefault)
        {
            WriteInt32(NullLength);
            return;
        }
        WriteInt32(values.Length);
        for (int i = 0; i < values.Length; i++) WriteNullableString(values[i]);
    }

    /// <summary>Entries in ordinal key order, so equal dictionaries give equal bytes.</summary>
    public void WriteDictionary<T>(IReadOnlyDictionary<string, T>? values, Action<PayloadWriter, T> writeValue, string field)
    {
        if (values is null)
        {
            WriteInt32(NullLength);
            return;
        }
        WriteInt32(values.Count);
        foreach (var (key, value) in values.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            WriteString(key, field + " key");
            writeValue(this, value);
        }
    }

    private void WriteBlock<T>(ReadOnlySpan<T> values, bool isNull) where T : unmanaged
    {
        if (isNull)
        {
            WriteInt32(NullLength);
            return;
        }
        WriteInt32(values.Length);
        var bytes = MemoryMarshal.AsBytes(values);
        var target = Take(bytes.Length);
        bytes.CopyTo(target);
        if (!BitConverter.IsLittleEndian) ReverseEach<T>(target);
    }

    /// <summary>Big-endian hosts only: turn each element of a block copied in native order to little-endian.</summary>
    internal static void ReverseEach<T>(Span<byte> block) where T : unmanaged
    {
        int size = global::System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        if (size == 1) return;
        for (int i = 0; i < block.Length; i += size) block.Slice(i, size).Reverse();
    }

    private Span<byte> Take(int count)
    {
        if (_length + count > _buffer.Length)
        {
            long wanted = Math.Max((long)_buffer.Length * 2, (long)_length + count);
            if (wanted > Array.MaxLength) throw new InvalidOperationException($"payload would exceed {Array.MaxLength} bytes");
            Array.Resize(ref _buffer, (int)wanted);
        }
        var span = _buffer.AsSpan(_length, count);
        _length += count;
        return span;
    }
}
