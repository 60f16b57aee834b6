using System.Buffers;
using System.Text;
using CoLM.Determinism;

namespace CoLM.Data;

/// <summary>
/// Random access to the non-blank lines of a JSONL file without reading it into memory. The file is
/// streamed once through a fixed-size buffer to find where each non-blank line starts; that index is
/// cached beside the file as <c>FILE.jsonl.idx</c> and reused while the file's length and last-write
/// time match. A cache that is stale, truncated or fails its checksum is rebuilt, never trusted.
/// Line numbers follow <see cref="JsonlReader"/>: "\n", "\r\n" and a lone "\r" each end a line, blank
/// (ASCII-whitespace-only) lines are skipped but counted, and a UTF-8 byte order mark is ignored.
/// <para>Over 400 lines on purpose: scanning, writing and validating the cache all follow one
/// on-disk format; kept in one file, a change to the format is one reading.</para>
/// </summary>
public sealed class JsonlIndex
{
    // Cache layout (little-endian): magic, file length, last-write ticks (UTC), count,
    // count x (offset: int64, lineNumber: int32), then an FNV-1a checksum of everything before it.
    private const ulong Magic = 0x31305844494C4A43UL; // "CJLIDX01" as little-endian bytes
    private const int HeaderBytes = 8 + 8 + 8 + 4;
    private const int EntryBytes = 8 + 4;
    private const int BufferBytes = 64 * 1024;

    private readonly long[] _offsets;
    private readonly int[] _lineNumbers;
    private readonly long _fileLength;

    private JsonlIndex(string path, long fileLength, long[] offsets, int[] lineNumbers)
    {
        Path = path;
        _fileLength = fileLength;
        _offsets = offsets;
        _lineNumbers = lineNumbers;
    }

    /// <summary>The JSONL file this index describes.</summary>
    public string Path { get; }

    /// <summary>Where the cache for <paramref name="jsonlPath"/> lives.</summary>
    public static string CachePathFor(string jsonlPath) => jsonlPath + ".idx";

    /// <summary>Number of non-blank lines.</summary>
    public int Count => _offsets.Length;

    /// <summary>Byte offset in the file where non-blank line <paramref name="i"/> starts.</summary>
    public long OffsetOf(int i)
    {
        CheckIndex(i);
        return _offsets[i];
    }

    /// <summary>1-based line number in the file of non-blank line <paramref name="i"/>.</summary>
    public int LineNumberOf(int i)
    {
        CheckIndex(i);
        return _lineNumbers[i];
    }

    /// <summary>Reads non-blank line <paramref name="i"/> (without its terminator) from disk.</summary>
    public string ReadLine(int i)
    {
        CheckIndex(i);
        using var handle = File.OpenHandle(Path, FileMode.Open, FileAccess.Read, FileShare.Read);
        if (RandomAccess.GetLength(handle) != _fileLength)
        {
            throw new DataFormatException(Path, "file changed since its line index was built; open it again");
        }

        var buffer = ArrayPool<byte>.Shared.Rent(4096);
        try
        {
            var length = 0;
            var position = _offsets[i];
            while (true)
            {
                if (length == buffer.Length)
                {
                    var bigger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                    buffer.AsSpan(0, length).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }

                var read = RandomAccess.Read(handle, buffer.AsSpan(length), position);
                if (read == 0)
                {
                    return Encoding.UTF8.GetString(buffer, 0, length);
                }

                var end = buffer.AsSpan(length, read).IndexOfAny((byte)'\n', (byte)'\r');
                if (end >= 0)
                {
                    return Encoding.UTF8.GetString(buffer, 0, length + end);
                }

                length += read;
                position += read;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Opens the index for a JSONL file, reusing a matching cache or (re)building it.</summary>
    public static JsonlIndex Open(string jsonlPath)
    {
        ArgumentNullException.ThrowIfNull(jsonlPath);
        var info = new FileInfo(jsonlPath);
        if (!info.Exists)
        {
            throw new DataFormatException(jsonlPath, "file not found");
        }

        var length = info.Length;
        var ticks = info.LastWriteTimeUtc.Ticks;
        var cachePath = CachePathFor(jsonlPath);
        if (TryLoadCache(cachePath, length, ticks) is { } cached)
        {
            return new JsonlIndex(jsonlPath, length, cached.Offsets, cached.LineNumbers);
        }

        var (offsets, lineNumbers) = Build(jsonlPath, length);
        // If the file changed while it was being scanned, the index would not match its new metadata.
        info.Refresh();
        if (info.Length != length || info.LastWriteTimeUtc.Ticks != ticks)
        {
            throw new DataFormatException(jsonlPath, "file changed while its line index was being built");
        }

        TryWriteCache(cachePath, length, ticks, offsets, lineNumbers);
        return new JsonlIndex(jsonlPath, length, offsets, lineNumbers);
    }

    private void CheckIndex(int i)
    {
        if ((uint)i >= (uint)_offsets.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(i), i, $"line index must be in [0, {_offsets.Length})");
        }
    }

    private static (long[] Offsets, int[] LineNumbers) Build(string path, long length)
    {
        var offsets = new List<long>();
        var lineNumbers = new List<int>();
        var buffer = ArrayPool<byte>.Shared.Rent(BufferBytes);
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
            long position = 0; // file offset of buffer[0]
            long lineStart = 0;
            var lineNumber = 1;
            var nonBlank = false;
            var previousWasCr = false;
            var first = true;
            int read;
            while ((read = stream.Read(buffer, 0, buffer.Length)) > 0)
            {
                var start = 0;
                if (first)
                {
                    first = false;
                    if (StartsWithBom(stream, buffer, ref read))
                    {
                        start = 3;
                        lineStart = 3;
                    }
                }

                for (var k = start; k < read; k++)
                {
                    var b = buffer[k];
                    if (b == (byte)'\n' && previousWasCr)
                    {
                        // Second half of "\r\n": the line already ended at the '\r'.
                        previousWasCr = false;
                        lineStart = position + k + 1;
                        continue;
                    }

                    previousWasCr = false;
                    if (b == (byte)'\n' || b == (byte)'\r')
                    {
                        EndLine(offsets, lineNumbers, lineStart, ref lineNumber, ref nonBlank);
                        previousWasCr = b == (byte)'\r';
                        lineStart = position + k + 1;
                    }
                    else if (!nonBlank && b is not ((byte)' ' or (byte)'\t' or (byte)'\v' or (byte)'\f'))
                    {
                        nonBlank = true;
                    }
                }

                position += read;
            }

            if (lineStart < position || nonBlank)
            {
                EndLine(offsets, lineNumbers, lineStart, ref lineNumber, ref nonBlank);
            }

            if (position != length)
            {
                throw new DataFormatException(path, "file changed while its line index was being built");
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return (offsets.ToArray(), lineNumbers.ToArray());
    }

    /// <summary>Makes sure the first 3 bytes are in the buffer, and reports whether they are a BOM.</summary>
    private static bool StartsWithBom(FileStream stream, byte[] buffer, ref int read)
    {
        while (read < 3)
        {
            var more = stream.Read(buffer, read, buffer.Length - read);
            if (more == 0)
            {
                break;
            }

            read += more;
        }

        return read >= 3 && buffer[0] == 0xEF && buffer[1] == 0xBB && buffer[2] == 0xBF;
    }

    private static void EndLine(List<long> offsets, List<int> lineNumbers, long lineStart, ref int lineNumber, ref bool nonBlank)
    {
        if (nonBlank)
        {
            if (offsets.Count == int.MaxValue)
            {
                throw new DataFormatException("JsonlIndex", "too many lines to index");
            }

            offsets.Add(lineStart);
            lineNumbers.Add(lineNumber);
        }

        nonBlank = false;
        lineNumber = checked(lineNumber + 1);
    }

    private static (long[] Offsets, int[] LineNumbers)? TryLoadCache(string cachePath, long length, long ticks)
    {
        try
        {
            if (!File.Exists(cachePath))
            {
                return null;
            }

            using var stream = new FileStream(cachePath, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 64 * 1024);
            if (stream.Length < HeaderBytes + 8)
            {
                return null;
            }

            var hash = new StableHash();
            using var reader = new BinaryReader(stream, Encoding.UTF8, leaveOpen: true);
            var header = reader.ReadBytes(HeaderBytes);
            hash.Add(header);
            var magic = BitConverter.ToUInt64(header, 0);
            var cachedLength = BitConverter.ToInt64(header, 8);
            var cachedTicks = BitConverter.ToInt64(header, 16);
            var count = BitConverter.ToInt32(header, 24);
            if (magic != Magic || cachedLength != length || cachedTicks != ticks || count < 0
                || stream.Length != HeaderBytes + ((long)count * EntryBytes) + 8)
            {
                return null;
            }

            var offsets = new long[count];
            var lineNumbers = new int[count];
            Span<byte> entry = stackalloc byte[EntryBytes];
            long previousOffset = -1;
            var previousLine = 0;
            for (var i = 0; i < count; i++)
            {
                stream.ReadExactly(entry);
                hash.Add(entry);
                var offset = BitConverter.ToInt64(entry[..8]);
                var line = BitConverter.ToInt32(entry[8..]);
                if (offset <= previousOffset || offset >= length || line <= previousLine)
                {
                    return null;
                }

                offsets[i] = previousOffset = offset;
                lineNumbers[i] = previousLine = line;
            }

            return reader.ReadUInt64() == hash.Value ? (offsets, lineNumbers) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static void TryWriteCache(string cachePath, long length, long ticks, long[] offsets, int[] lineNumbers)
    {
        var temp = $"{cachePath}.{Guid.NewGuid():N}.tmp";
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 64 * 1024))
            {
                var hash = new StableHash();
                Span<byte> header = stackalloc byte[HeaderBytes];
                BitConverter.TryWriteBytes(header, Magic);
                BitConverter.TryWriteBytes(header[8..], length);
                BitConverter.TryWriteBytes(header[16..], ticks);
                BitConverter.TryWriteBytes(header[24..], offsets.Length);
                stream.Write(header);
                hash.Add(header);
                Span<byte> entry = stackalloc byte[EntryBytes];
                for (var i = 0; i < offsets.Length; i++)
                {
                    BitConverter.TryWriteBytes(entry, offsets[i]);
                    BitConverter.TryWriteBytes(entry[8..], lineNumbers[i]);
                    stream.Write(entry);
                    hash.Add(entry);
                }

                Span<byte> trailer = stackalloc byte[8];
                BitConverter.TryWriteBytes(trailer, hash.Value);
                stream.Write(trailer);
            }

            File.Move(temp, cachePath, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The cache is only an optimisation (e.g. a read-only data directory): keep the in-memory index.
            try
            {
                File.Delete(temp);
            }
            catch (Exception cleanup) when (cleanup is IOException or UnauthorizedAccessException)
            {
                // Nothing more to do.
            }
        }
    }
}

/// <summary>
/// Examples from a JSONL file read on demand through a <see cref="JsonlIndex"/>, so a multi-gigabyte
/// file can be sampled without loading it. Each access parses its line again; errors carry
/// "file:line" exactly as <see cref="JsonlReader"/> reports them.
/// </summary>
public sealed class JsonlExampleSource : IReadOnlyList<RawExample>
{
    private readonly JsonlFields _fields;

    public JsonlExampleSource(string path, JsonlFields fields)
        : this(JsonlIndex.Open(path ?? throw new ArgumentNullException(nameof(path))), fields)
    {
    }

    public JsonlExampleSource(JsonlIndex index, JsonlFields fields)
    {
        ArgumentNullException.ThrowIfNull(index);
        ArgumentNullException.ThrowIfNull(fields);
        foreach (var (setting, name) in new[] { ("Source", fields.Source), ("Prompt", fields.Prompt), ("Target", fields.Target) })
        {
            if (string.IsNullOrEmpty(name))
            {
                throw new DataFormatException($"{nameof(JsonlFields)}.{setting}", "field name must not be empty");
            }
        }

        if (index.Count == 0)
        {
            throw new DataFormatException(index.Path, "empty dataset (no examples)");
        }

        Index = index;
        _fields = fields;
    }

    public JsonlIndex Index { get; }

    public int Count => Index.Count;

    public RawExample this[int index] =>
        JsonlLineParser.Parse(Index.ReadLine(index), $"{Index.Path}:{Index.LineNumberOf(index)}", _fields);

    public IEnumerator<RawExample> GetEnumerator()
    {
        for (var i = 0; i < Index.Count; i++)
        {
            yield return this[i];
        }
    }

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}
