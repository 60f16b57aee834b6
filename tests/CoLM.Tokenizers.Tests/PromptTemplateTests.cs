using Xunit;

namespace CoLM.Tokenizers.Tests;

public sealed class PromptTemplateTests
{
    [Fact]
    public void Alpaca_without_input_is_exact()
    {
        var text = PromptTemplate.Alpaca.Format("Add 12 and 7.");

        Assert.Equal(
            "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
            + "### Instruction:\nAdd 12 and 7.\n\n### Response:\n",
            text);
    }

    [Fact]
    public void Alpaca_with_input_is_exact()
    {
        var text = PromptTemplate.Alpaca.Format("Summarize the text.", "The cat sat.");

        Assert.Equal(
            "Below is an instruction that describes a task, paired with an input that provides further context. "
            + "Write a response that appropriately completes the request.\n\n"
            + "### Instruction:\nSummarize the text.\n\n### Input:\nThe cat sat.\n\n### Response:\n",
            text);
    }

    [Fact]
    public void Empty_input_uses_the_template_without_input()
    {
        Assert.Equal(PromptTemplate.Alpaca.Format("Do it."), PromptTemplate.Alpaca.Format("Do it.", string.Empty));
    }

    [Fact]
    public void Placeholders_inside_values_are_not_expanded()
    {
        var template = new PromptTemplate("I={instruction} X={input}", "I={instruction}");

        Assert.Equal("I={input} X={instruction}", template.Format("{input}", "{instruction}"));
    }

    [Fact]
    public void Custom_template_loads_from_file_with_two_parts()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, "Q: {instruction}\nC: {input}\nA:\r\n=====\r\nQ: {instruction}\nA:");
            var template = PromptTemplate.Load(path);

            Assert.Equal("Q: why\nC: because\nA:", template.Format("why", "because"));
            Assert.Equal("Q: why\nA:", template.Format("why"));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Custom_single_template_serves_both()
    {
        var template = PromptTemplate.Parse("<user>{instruction}{input}</user>");

        Assert.Equal("<user>hi</user>", template.Format("hi"));
        Assert.Equal("<user>hi there</user>", template.Format("hi", " there"));
    }

    [Fact]
    public void Template_without_instruction_placeholder_is_refused()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, "Just {input}");
            var error = Assert.Throws<FormatException>(() => PromptTemplate.Load(path));

            Assert.Contains("{instruction}", error.Message, StringComparison.Ordinal);
            Assert.Contains(path, error.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Missing_template_file_is_refused()
    {
        Assert.Throws<FileNotFoundException>(() => PromptTemplate.Load(Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString("N"))));
    }
}
