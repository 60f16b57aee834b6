using System.Text;
using CoLM.Data;
using Xunit;

namespace CoLM.Data.Tests;

public class JsonlIndexTests
{
    private static string Line(int i) => $"{{\"source\":\"s{i % 3}\",\"instruction\":\"q{i}\",\"output\":\"a{i}\"}}";

    [Fact]
    public void Random_access_handles_unix_and_windows_endings_blank_lines_and_a_bom()
    {
        using var dir = new TempDir();
        var path = dir.Write("file.jsonl", "\uFEFF" + Line(0) + "\r\n\r\n   \n" + Line(1) + "\n" + Line(2) + "\r" + Line(3) + "\r\n\t\r\n" + Line(4));

        var index = JsonlIndex.Open(path);

        Assert.Equal(5, index.Count);
        Assert.Equal(new[] { 1, 4, 5, 6, 8 }, Enumerable.Range(0, 5).Select(index.LineNumberOf));
        Assert.Equal(3, index.OffsetOf(0));
        foreach (var i in new[] { 4, 0, 2, 3, 1 })
        {
            Assert.Equal(Line(i), index.ReadLine(i));
        }

        // Same examples and origins as the streaming reader.
        Assert.Equal(JsonlReader.Read(path, new JsonlFields()), new JsonlExampleSource(path, new JsonlFields()));
        Assert.Throws<ArgumentOutOfRangeException>(() => index.ReadLine(5));
    }

    [Fact]
    public void Cache_is_reused_rebuilt_when_the_file_changes_and_never_trusted_when_corrupt()
    {
        using var dir = new TempDir();
        var path = dir.Jsonl(Line(0), Line(1));
        var cache = JsonlIndex.CachePathFor(path);

        Assert.Equal(2, JsonlIndex.Open(path).Count);
        Assert.True(File.Exists(cache));
        var written = File.GetLastWriteTimeUtc(cache);
        var bytes = File.ReadAllBytes(cache);
        Thread.Sleep(20);
        Assert.Equal(2, JsonlIndex.Open(path).Count);
        Assert.Equal(written, File.GetLastWriteTimeUtc(cache));

        File.AppendAllText(path, "\n" + Line(2) + "\n");
        var grown = JsonlIndex.Open(path);
        Assert.Equal(3, grown.Count);
        Assert.Equal(Line(2), grown.ReadLine(2));
        Assert.Equal(4, grown.LineNumberOf(2));

        // Same length, new mtime: rebuilt (different content at the same offsets is caught this way).
        File.WriteAllText(path, Line(5) + "\n\n" + Line(6) + "\n" + Line(7) + "\n");
        File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddMinutes(-5));
        var rewritten = JsonlIndex.Open(path);
        Assert.Equal(new[] { 1, 3, 4 }, Enumerable.Range(0, 3).Select(rewritten.LineNumberOf));

        // Corruption: a flipped byte in the entries, a truncated file, garbage.
        var good = File.ReadAllBytes(cache);
        Assert.NotEqual(bytes, good);
        var flipped = (byte[])good.Clone();
        flipped[^10] ^= 0x01;
        foreach (var corrupt in new[] { flipped, good[..^4], Encoding.UTF8.GetBytes("not an index"), Array.Empty<byte>() })
        {
            File.WriteAllBytes(cache, corrupt);
            var reopened = JsonlIndex.Open(path);
            Assert.Equal(Line(7), reopened.ReadLine(2));
            Assert.Equal(good, File.ReadAllBytes(cache));
        }

        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp"));
    }

    [Fact]
    public void Example_source_reports_errors_with_file_and_line_and_rejects_empty_files()
    {
        using var dir = new TempDir();
        var path = dir.Jsonl(Line(0), "", """{"source":"s","instruction":"q"}""");
        var source = new JsonlExampleSource(path, new JsonlFields());
        Assert.Equal($"{path}:1", source[0].Origin);
        var e = Assert.Throws<DataFormatException>(() => source[1]);
        Assert.Equal($"{path}:3", e.Origin);
        Assert.Contains("missing field 'output'", e.Problem);

        var empty = dir.Write("empty.jsonl", "\n  \n");
        Assert.Contains("empty dataset", Assert.Throws<DataFormatException>(() => new JsonlExampleSource(empty, new JsonlFields())).Problem);
        Assert.Throws<DataFormatException>(() => JsonlIndex.Open(Path.Combine(dir.Path, "missing.jsonl")));
    }

    [Fact]
    public void Large_file_is_indexed_and_sampled_without_reading_it_into_memory()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "big.jsonl");
        var padding = new string('x', 600);
        const int lines = 100_000;
        using (var writer = new StreamWriter(path, append: false, new UTF8Encoding(false), 1 << 16))
        {
            for (var i = 0; i < lines; i++)
            {
                writer.Write($"{{\"source\":\"s{i % 7}\",\"instruction\":\"q{i} {padding}\",\"output\":\"a{i}\"}}");
                writer.Write(i % 2 == 0 ? "\r\n" : "\n");
                if (i % 1000 == 0)
                {
                    writer.Write("\n");
                }
            }
        }

        var fileBytes = new FileInfo(path).Length;
        Assert.True(fileBytes > 60_000_000, $"file is {fileBytes} bytes");

        var before = GC.GetAllocatedBytesForCurrentThread();
        var source = new JsonlExampleSource(path, new JsonlFields());
        var rng = new Random(7);
        for (var k = 0; k < 200; k++)
        {
            var i = rng.Next(lines);
            var example = source[i];
            Assert.Equal($"a{i}", example.Target);
            Assert.Equal($"s{i % 7}", example.Source);
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 10_000_000, $"allocated {allocated} bytes for a {fileBytes}-byte file");
        Assert.Equal(lines, source.Count);
        Assert.Equal(1002, source.Index.LineNumberOf(1000)); // one blank line (after example 0) precedes it
        Assert.True(File.Exists(JsonlIndex.CachePathFor(path)));

        before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(lines, JsonlIndex.Open(path).Count);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 10_000_000);
    }
}
