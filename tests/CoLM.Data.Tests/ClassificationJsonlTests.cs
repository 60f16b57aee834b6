using CoLM.Data;
using Xunit;

namespace CoLM.Data.Tests;

public class ClassificationJsonlTests
{
    private static readonly string[] Words = { "no", "yes" };

    [Fact]
    public void Reads_text_and_premise_hypothesis_with_int_string_and_bool_labels()
    {
        using var dir = new TempDir();
        var path = dir.Jsonl(
            """{"source":"boolq","text":"Is water wet?","label":1}""",
            "",
            """{"source":"rte","premise":"A cat sleeps.","hypothesis":"An animal rests.","label":"YES"}""",
            """{"source":"rte","text":null,"premise":"P","hypothesis":"H","label":false}""");

        var examples = ClassificationJsonl.Read(path, new ClassificationFields(), Words).ToList();

        Assert.Equal(
            new[]
            {
                new RawExample("boolq", "Is water wet?", "yes", $"{path}:1"),
                new RawExample("rte", "A cat sleeps.\nAn animal rests.", "yes", $"{path}:3"),
                new RawExample("rte", "P\nH", "no", $"{path}:4"),
            },
            examples);
    }

    [Fact]
    public void Honours_custom_field_names()
    {
        using var dir = new TempDir();
        var path = dir.Jsonl("""{"task":"cb","sentence1":"a","sentence2":"b","y":2}""");
        var fields = new ClassificationFields(Source: "task", Text: "txt", Premise: "sentence1", Hypothesis: "sentence2", Label: "y");
        var example = Assert.Single(ClassificationJsonl.Read(path, fields, new[] { "entailment", "contradiction", "neutral" }));
        Assert.Equal(("a\nb", "neutral"), (example.Prompt, example.Target));
    }

    [Theory]
    [InlineData("""{"source":"s","label":0}""", "missing field 'text' (or 'premise' and 'hypothesis')")]
    [InlineData("""{"source":"s","premise":"p","label":0}""", "missing field 'hypothesis'")]
    [InlineData("""{"source":"s","text":"t","label":2}""", "field 'label' index 2 out of range")]
    [InlineData("""{"source":"s","text":"t","label":-1}""", "field 'label' index -1 out of range")]
    [InlineData("""{"source":"s","text":"t","label":0.5}""", "field 'label' is not an integer")]
    [InlineData("""{"source":"s","text":"t","label":"maybe"}""", "field 'label' has unknown label word 'maybe'")]
    [InlineData("""{"source":"s","text":"t"}""", "missing field 'label'")]
    [InlineData("""{"source":"s","text":5,"label":0}""", "field 'text' is not a string")]
    [InlineData("""{"text":"t","label":0}""", "missing field 'source'")]
    [InlineData("""{"source":"s","text":"t","label":[0]}""", "field 'label' is not an integer or string")]
    [InlineData("{not json", "malformed JSON")]
    public void Reports_problems_with_file_and_line(string line, string problem)
    {
        using var dir = new TempDir();
        var path = dir.Jsonl("""{"source":"s","text":"ok","label":0}""", line);
        var e = Assert.Throws<DataFormatException>(() => ClassificationJsonl.Read(path, new ClassificationFields(), Words).ToList());
        Assert.Equal($"{path}:2", e.Origin);
        Assert.Contains(problem, e.Problem);
    }

    [Fact]
    public void Rejects_bad_settings_and_missing_or_empty_files()
    {
        using var dir = new TempDir();
        var path = dir.Jsonl("");
        Assert.Throws<DataFormatException>(() => ClassificationJsonl.Read(path, new ClassificationFields(), Array.Empty<string>()));
        Assert.Throws<DataFormatException>(() => ClassificationJsonl.Read(path, new ClassificationFields(), new[] { "yes", "YES" }));
        Assert.Throws<DataFormatException>(() => ClassificationJsonl.Read(path, new ClassificationFields(Label: ""), Words));
        Assert.Throws<DataFormatException>(() => ClassificationJsonl.Read(Path.Combine(dir.Path, "nope.jsonl"), new ClassificationFields(), Words));
        var e = Assert.Throws<DataFormatException>(() => ClassificationJsonl.Read(path, new ClassificationFields(), Words).ToList());
        Assert.Contains("empty dataset", e.Problem);
    }

    [Theory]
    [InlineData("yes", "yes", true)]
    [InlineData("  Yes, because the text says so", "yes", true)]
    [InlineData("no.", "yes", false)]
    [InlineData("NO", "no", true)]
    [InlineData("yesterday it rained", "yes", false)]
    [InlineData("maybe", "no", false)]
    [InlineData("", "no", false)]
    public void Label_accuracy_uses_the_label_word_the_generation_starts_with(string generated, string label, bool expected) =>
        Assert.Equal(expected, LabelAccuracy.Matches(generated, label, Words));

    [Fact]
    public void Label_accuracy_prefers_the_longest_matching_word()
    {
        var words = new[] { "entailment", "not_entailment" };
        Assert.True(LabelAccuracy.Matches("not_entailment", "not_entailment", words));
        Assert.False(LabelAccuracy.Matches("not_entailment", "entailment", words));
        var nested = new[] { "neutral", "neutral-ish" };
        Assert.True(LabelAccuracy.Matches("neutral-ish really", "neutral-ish", nested));
        Assert.Throws<DataFormatException>(() => LabelAccuracy.Matches("yes", "perhaps", Words));
    }
}
