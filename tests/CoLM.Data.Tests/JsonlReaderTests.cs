using CoLM.Data;
using Xunit;

namespace CoLM.Data.Tests;

public class JsonlReaderTests
{
    private static readonly JsonlFields Custom = new(Source: "kind", Prompt: "question", Target: "answer");

    [Fact]
    public void Reads_custom_fields_skipping_blank_lines_and_recording_line_origins()
    {
        using var dir = new TempDir();
        var path = dir.Jsonl(
            """{"kind":"math","question":"1+1?","answer":"2","extra":5}""",
            "",
            "   ",
            """{"answer":"b\nc","question":"q\"2","kind":"text"}""");

        var examples = JsonlReader.Read(path, Custom).ToList();

        Assert.Equal(
            new[]
            {
                new RawExample("math", "1+1?", "2", $"{path}:1"),
                new RawExample("text", "q\"2", "b\nc", $"{path}:4"),
            },
            examples);
    }

    [Fact]
    public void Reads_windows_line_endings_and_a_byte_order_mark()
    {
        using var dir = new TempDir();
        var path = dir.Write("file.jsonl", "\uFEFF{\"source\":\"a\",\"instruction\":\"p\",\"output\":\"t\"}\r\n\r\n{\"source\":\"b\",\"instruction\":\"p\",\"output\":\"t\"}\r\n");
        var examples = JsonlReader.Read(path, new JsonlFields()).ToList();
        Assert.Equal(new[] { "a", "b" }, examples.Select(e => e.Source));
        Assert.Equal($"{path}:3", examples[1].Origin);
    }

    [Theory]
    [InlineData("{\"kind\":\"m\",\"question\":\"q\",\"answer\":\"a\"", "malformed JSON")]
    [InlineData("not json at all", "malformed JSON")]
    [InlineData("""["kind","question","answer"]""", "not a JSON object")]
    [InlineData("\"just a string\"", "not a JSON object")]
    [InlineData("""{"question":"q","answer":"a"}""", "missing field 'kind'")]
    [InlineData("""{"kind":"m","answer":"a"}""", "missing field 'question'")]
    [InlineData("""{"kind":"m","question":"q"}""", "missing field 'answer'")]
    [InlineData("""{"kind":3,"question":"q","answer":"a"}""", "field 'kind' is not a string")]
    [InlineData("""{"kind":"m","question":null,"answer":"a"}""", "field 'question' is not a string")]
    [InlineData("""{"kind":"m","question":"q","answer":["a"]}""", "field 'answer' is not a string")]
    [InlineData("""{"kind":"","question":"q","answer":"a"}""", "empty source in field 'kind'")]
    public void Bad_line_names_file_line_and_problem(string badLine, string problem)
    {
        using var dir = new TempDir();
        var good = """{"kind":"m","question":"q","answer":"a"}""";
        var path = dir.Jsonl(good, "", badLine, good);

        var ex = Assert.Throws<DataFormatException>(() => JsonlReader.Read(path, Custom).ToList());

        Assert.Contains("file.jsonl:3", ex.Message);
        Assert.Contains(problem, ex.Message);
        Assert.Equal($"{path}:3", ex.Origin);
    }

    [Fact]
    public void Errors_surface_only_when_the_bad_line_is_reached()
    {
        using var dir = new TempDir();
        var path = dir.Jsonl("""{"source":"s","instruction":"q","output":"a"}""", "{oops");
        var first = JsonlReader.Read(path, new JsonlFields()).First();
        Assert.Equal("s", first.Source);
    }

    [Fact]
    public void Missing_file_names_the_path()
    {
        using var dir = new TempDir();
        var path = System.IO.Path.Combine(dir.Path, "absent.jsonl");
        var ex = Assert.Throws<DataFormatException>(() => JsonlReader.Read(path, new JsonlFields()));
        Assert.Equal(path, ex.Origin);
        Assert.Contains("file not found", ex.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("\n\n  \n")]
    public void File_without_examples_is_an_empty_dataset(string content)
    {
        using var dir = new TempDir();
        var path = dir.Write("file.jsonl", content);
        var ex = Assert.Throws<DataFormatException>(() => JsonlReader.Read(path, new JsonlFields()).ToList());
        Assert.Contains("file.jsonl", ex.Message);
        Assert.Contains("empty dataset", ex.Message);
    }

    [Fact]
    public void Empty_field_name_setting_is_rejected()
    {
        using var dir = new TempDir();
        var path = dir.Jsonl("""{"source":"s","instruction":"q","output":"a"}""");
        var ex = Assert.Throws<DataFormatException>(() => JsonlReader.Read(path, new JsonlFields(Prompt: "")));
        Assert.Equal("JsonlFields.Prompt", ex.Origin);
    }
}
