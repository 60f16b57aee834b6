using CoLM.Data;
using Xunit;
using Xunit.Abstractions;

namespace CoLM.Data.Tests;

/// <summary>Training data read by line through the cached index: the same mixture as reading the whole file, in bounded memory.</summary>
[Collection(nameof(MemoryMeasurements))]
public class StreamedJsonlTests(ITestOutputHelper output)
{
    private static readonly CharTokenizer Tok = CharTokenizer.Instance;

    /// <summary>The mixture as reading the whole file into memory builds it (the behaviour before streaming).</summary>
    private static DataMixture WholeFile(string path, int maxLength, int heldoutPerSource, long seed, Func<string, string>? format)
    {
        var all = JsonlReader.Read(path, new JsonlFields()).Select(e => format is null ? e : e with { Prompt = format(e.Prompt) }).ToList();
        var isHeldout = HeldoutSplitter.Choose(all, heldoutPerSource, seed);
        var train = all.Where((_, i) => !isHeldout[i]).ToList();
        var heldout = all.Where((_, i) => isHeldout[i]).ToList();
        var names = all.Select(e => e.Source).Distinct().Order(StringComparer.Ordinal).ToList();
        TokenizedExample[] Tokenize(List<RawExample> split) =>
            split.Select((e, i) => ExampleTokenizer.Tokenize(e, i, names.IndexOf(e.Source), Tok, maxLength)).ToArray();
        return new DataMixture(names, Tokenize(train), Tokenize(heldout), heldout, maxLength);
    }

    [Fact]
    public void A_streamed_mixture_equals_the_whole_file_one_example_by_example()
    {
        using var dir = new TempDir();
        var lines = new List<string>();
        for (var i = 0; i < 300; i++)
        {
            // Repeated prompts (i % 40) exercise the held-out split's preference for unique prompts; long ones get truncated.
            var prompt = i % 3 == 0 ? $"q{i % 40}" : $"question {i} " + new string('x', i % 50);
            lines.Add($"{{\"source\":\"s{(i * 7) % 5}\",\"instruction\":\"{prompt}\",\"output\":\"a{i}\"}}");
            if (i % 37 == 0) lines.Add("   ");
        }
        var path = dir.Jsonl([.. lines]);
        Func<string, string> format = p => $"### Q: {p}\n### A:";

        var expected = WholeFile(path, 48, heldoutPerSource: 6, seed: 3, format);
        var streamed = MixtureBuilder.FromJsonl(path, new JsonlFields(), Tok, 48, heldoutPerSource: 6, seed: 3, format);

        Assert.True(File.Exists(JsonlIndex.CachePathFor(path)));
        Assert.Equal(expected.SourceNames, streamed.SourceNames);
        Assert.Equal(expected.TrainCountPerSource, streamed.TrainCountPerSource);
        Assert.Equal(expected.TrainSourceIds, streamed.TrainSourceIds);
        Assert.Equal(expected.HeldoutCountPerSource, streamed.HeldoutCountPerSource);
        Assert.Equal(expected.TruncatedPerSource, streamed.TruncatedPerSource);
        Assert.True(streamed.TruncatedCount > 0);
        Assert.Equal(expected.Train.Count, streamed.Train.Count);
        for (var i = 0; i < expected.Train.Count; i++) AssertSame(expected.Train[i], streamed.Train[i]);
        for (var i = expected.Train.Count - 1; i >= 0; i -= 7) AssertSame(expected.Train[i], streamed.Train[i]); // after cache eviction too
        Assert.Equal(expected.Heldout.Count, streamed.Heldout.Count);
        for (var i = 0; i < expected.Heldout.Count; i++) AssertSame(expected.Heldout[i], streamed.Heldout[i]);
        Assert.Equal(expected.HeldoutRaw, streamed.HeldoutRaw);
    }

    private static void AssertSame(TokenizedExample expected, TokenizedExample actual)
    {
        Assert.Equal(expected.Id, actual.Id);
        Assert.Equal(expected.SourceId, actual.SourceId);
        Assert.Equal(expected.Tokens, actual.Tokens);
        Assert.Equal(expected.PromptLength, actual.PromptLength);
        Assert.Equal(expected.Truncated, actual.Truncated);
    }

    [Fact]
    public void Training_data_of_a_file_far_larger_than_the_cap_stays_under_it()
    {
        using var dir = new TempDir();
        var path = System.IO.Path.Combine(dir.Path, "big.jsonl");
        const int lines = 5_000;
        var padding = new string('p', 1500);
        using (var writer = new StreamWriter(path))
        {
            for (var i = 0; i < lines; i++)
                writer.WriteLine($"{{\"source\":\"s{i % 9}\",\"instruction\":\"q{i} {padding}\",\"output\":\"a{i}\"}}");
        }
        long fileBytes = new FileInfo(path).Length;
        const long cap = 1_500_000; // bytes retained by the mixture; the file is ~5x that, ~10x as UTF-16 strings

        long before = GC.GetTotalMemory(forceFullCollection: true);
        var mixture = MixtureBuilder.FromJsonl(path, new JsonlFields(), Tok, 64, heldoutPerSource: 4, seed: 1);
        var rng = new Random(5);
        for (var k = 0; k < 300; k++) Assert.True(mixture.Train[rng.Next(mixture.Train.Count)].TargetLength >= 1); // fills part of the cache
        long retained = GC.GetTotalMemory(forceFullCollection: true) - before;

        output.WriteLine($"file {fileBytes} bytes, mixture retains {retained} bytes");
        Assert.True(fileBytes > 5 * cap, $"file is {fileBytes} bytes");
        Assert.True(retained < cap, $"the mixture retains {retained} bytes for a {fileBytes}-byte file");
        Assert.Equal(lines - 9 * 4, mixture.Train.Count);
        GC.KeepAlive(mixture);
    }

    [Fact]
    public void Classification_rows_train_with_the_label_word_as_target()
    {
        using var dir = new TempDir();
        var path = dir.Jsonl(
            "{\"source\":\"boolq\",\"text\":\"is the sky blue\",\"label\":true}",
            "{\"source\":\"rte\",\"premise\":\"a cat sat\",\"hypothesis\":\"an animal sat\",\"label\":0}",
            "{\"source\":\"boolq\",\"text\":\"is fire cold\",\"label\":\"no\"}");
        var fields = new ClassificationFields();
        Assert.Equal("classification", ClassificationJsonl.DetectFormat(path, "instruction", fields));

        var m = MixtureBuilder.FromJsonlLines(path, ClassificationJsonl.LineParser(fields, ["no", "yes"]), Tok, 64, heldoutPerSource: 0, seed: 1);

        Assert.Equal(["boolq", "rte"], m.SourceNames);
        string Target(TokenizedExample e) => Tok.Decode(e.Tokens.AsSpan(e.PromptLength, e.TargetLength - 1));
        Assert.Equal(["yes", "no", "no"], m.Train.Select(Target));
        Assert.Equal("a cat sat\nan animal sat", Tok.Decode(m.Train[1].Tokens.AsSpan(1, m.Train[1].PromptLength - 1)));
    }

    [Fact]
    public void The_format_of_a_file_is_told_from_its_first_row_or_refused_with_its_line()
    {
        using var dir = new TempDir();
        var math = dir.Jsonl("", "{\"source\":\"a\",\"instruction\":\"1+1\",\"output\":\"2\"}");
        Assert.Equal("math", ClassificationJsonl.DetectFormat(math, "instruction", new ClassificationFields()));

        var neither = dir.Write("neither.jsonl", "{\"source\":\"a\",\"question\":\"?\"}\n");
        var error = Assert.Throws<DataFormatException>(() => ClassificationJsonl.DetectFormat(neither, "instruction", new ClassificationFields()));
        Assert.Contains("neither.jsonl:1", error.Message);
        Assert.Contains("cannot tell the format", error.Message);
    }
}

/// <summary>Tests that measure the process's retained memory run alone.</summary>
[CollectionDefinition(nameof(MemoryMeasurements), DisableParallelization = true)]
public sealed class MemoryMeasurements;
