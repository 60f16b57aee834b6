using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Runtime.InteropServices;
using System.Text;

namespace CoLM.Cluster.Serialization;

/// <summary>A payload is shorter than its layout says, or holds a value the layout does not allow.</summary>
internal sealed class MalformedPayloadException(string message) : Exception(message);

/// <summary>
/// Reads what <see cref="PayloadWriter"/> wrote. Every read checks the bytes left first, and every
/// count is checked against them before anything is allocated, so a truncated or corrupted
/// payload ends in a <see cref="MalformedPayloadException"/> that says what was being read.
/// </summary>
internal sealed class PayloadReader(byte[] payload)
{
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private int _position;

    public int Remaining => payload.Length - _position;

    public byte ReadByte(string field) => Take(1, field)[0];

    public bool ReadBool(string field) => ReadByte(field) switch
    {
        0 => false,
        1 => true,
        var b => throw new MalformedPayloadException($"{field}: {b} is not a boolean (0 or 1)"),
    };

    public int ReadInt32(string field) => BinaryPrimitives.ReadInt32LittleEndian(Take(4, field));

    public long ReadInt64(string field) => BinaryPrimitives.ReadInt64LittleEndian(Take(8, field));

    public ulong ReadUInt64(string field) => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, field));

    public double ReadDouble(string field) => BinaryPrimitives.ReadDoubleLittleEndian(Take(8, field));

    public TimeSpan ReadTimeSpan(string field) => TimeSpan.FromTicks(ReadInt64(field));

    public ulong? ReadNullableUInt64(string field) => ReadBool(field + " presence") ? ReadUInt64(field) : null;

    public T ReadEnum<T>(string field) where T : struct, Enum
    {
        int raw = ReadInt32(field);
        var value = (T)Enum.ToObject(typeof(T), raw);
        return Enum.IsDefined(value) ? value : throw new MalformedPayloadException($"{field}: {raw} is not a {typeof(T).Name}");
    }

    public string ReadString(string field) =>
        ReadNullableString(field) ?? throw new MalformedPayloadException($"{field}: null where a string is required");

    public string? ReadNullableString(string field)
    {
        int length = ReadCount(field, elementSize: 1);
        if (length == PayloadWriter.NullLength) return null;
        try
        {
            return Utf8.GetString(Take(length, field));
        }
        catch (DecoderFallbackException e)
        {
            throw new MalformedPayloadException($"{field}: not valid UTF-8 ({e.Message})");
        }
    }

    public ImmutableArray<int> ReadInt32s(string field) => ToImmutable(ReadBlock<int>(field));

    public ImmutableArray<float> ReadFloatsImmutable(string field) => ToImmutable(ReadBlock<float>(field));

    public float[]? ReadFloats(string field) => ReadBlock<float>(field);

    public bool[]? ReadBools(string field)
    {
        int count = ReadCount(field, elementSize: 1);
        if (count == PayloadWriter.NullLength) return null;
        var bytes = Take(count, field);
        int bad = bytes.IndexOfAnyExcept((byte)0, (byte)1);
        if (bad >= 0) throw new MalformedPayloadException($"{field}[{bad}]: {bytes[bad]} is not a boolean (0 or 1)");
        var values = new bool[count];
        bytes.CopyTo(MemoryMarshal.AsBytes(values.AsSpan()));
        return values;
    }

    public ImmutableArray<string> ReadStrings(string field)
    {
        int count = ReadCount(field, elementSize: 4);   // each element is at least its length prefix
        if (count == PayloadWriter.NullLength) return default;
        var builder = ImmutableArray.CreateBuilder<string>(count);
        for (int i = 0; i < count; i++) builder.Add(ReadString($"{field}[{i}]"));
        return builder.MoveToImmutable();
    }

    public IReadOnlyDictionary<string, T>? ReadDictionary<T>(string field, Func<PayloadReader, string, T> readValue)
    {
        int count = ReadCount(field, elementSize: 4);
        if (count == PayloadWriter.NullLength) return null;
        var values = new Dictionary<string, T>(count, StringComparer.Ordinal);
        for (int i = 0; i < count; i++)
        {
            string key = ReadString($"{field} key {i}");
            if (!values.TryAdd(key, readValue(this, $"{field}[{key}]")))
                throw new MalformedPayloadException($"{field}: key '{key}' appears twice");
        }
        return values;
    }

    /// <summary>The whole payload must have been read: trailing bytes mean the layouts disagree.</summary>
    public void ExpectEnd()
    {
        if (Remaining != 0) throw new MalformedPayloadException($"{Remaining} unread bytes after the last field");
    }

    private T[]? ReadBlock<T>(string field) where T : unmanaged
    {
        int size = global::System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        int count = ReadCount(field, size);
        if (count == PayloadWriter.NullLength) return null;
        var values = new T[count];
        var target = MemoryMarshal.AsBytes(values.AsSpan());
        Take(count * size, field).CopyTo(target);
        if (!BitConverter.IsLittleEndian) PayloadWriter.ReverseEach<T>(target);
        return values;
    }

    private static ImmutableArray<T> ToImmutable<T>(T[]? values) =>
        values is null ? default : ImmutableCollectionsMarshal.AsImmutableArray(values);

    /// <summary>A count (or -1 for null) that the bytes left can actually hold.</summary>
    internal int ReadCount(string field, int elementSize)
    {
        int count = ReadInt32(field + " length");
        if (count == PayloadWriter.NullLength) return count;
        if (count < 0) throw new MalformedPayloadException($"{field}: negative length {count}");
        if ((long)count * elementSize > Remaining)
            throw new MalformedPayloadException($"{field}: length {count} needs {(long)count * elementSize} bytes but only {Remaining} are left (payload truncated or corrupt)");
        return count;
    }

    private ReadOnlySpan<byte> Take(int count, string field)
    {
        if (count > Remaining)
            throw new MalformedPayloadException($"{field}: needs {count} bytes but only {Remaining} are left (payload truncated)");
        var span = payload.AsSpan(_position, count);
        _position += count;
        return span;
    }
}
