namespace CoLM.Tokenizers;

/// <summary>
/// Instruction prompt with two shapes: one for examples that carry an extra input, one for those
/// that do not. Placeholders are <c>{instruction}</c> and <c>{input}</c>.
/// </summary>
public sealed record PromptTemplate(string WithInput, string WithoutInput)
{
    public const string InstructionPlaceholder = "{instruction}";
    public const string InputPlaceholder = "{input}";

    /// <summary>Separates the two templates in a template file: first the one with input, then the one without.</summary>
    public const string FileSeparator = "\n=====\n";

    /// <summary>The Stanford Alpaca prompt, the default.</summary>
    public static PromptTemplate Alpaca { get; } = new(
        "Below is an instruction that describes a task, paired with an input that provides further context. "
        + "Write a response that appropriately completes the request.\n\n"
        + "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n",
        "Below is an instruction that describes a task. "
        + "Write a response that appropriately completes the request.\n\n"
        + "### Instruction:\n{instruction}\n\n### Response:\n");

    /// <summary>Fills the template; an empty or missing input selects <see cref="WithoutInput"/>.</summary>
    public string Format(string instruction, string? input = null)
    {
        ArgumentNullException.ThrowIfNull(instruction);
        // One pass over the template, so placeholder text inside the instruction is left alone.
        return string.IsNullOrEmpty(input)
            ? Fill(WithoutInput, instruction, string.Empty)
            : Fill(WithInput, instruction, input);
    }

    /// <summary>
    /// Reads a template file. With a line <c>=====</c> the part before it is the template with input
    /// and the part after it the one without; with no separator the single template serves both
    /// (its <c>{input}</c>, if any, becomes empty when there is no input).
    /// </summary>
    public static PromptTemplate Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"prompt template file not found: {path}", path);
        }

        var text = File.ReadAllText(path).Replace("\r\n", "\n", StringComparison.Ordinal);
        return Parse(text, path);
    }

    /// <summary>Parses template text as <see cref="Load"/> does; <paramref name="source"/> names it in errors.</summary>
    public static PromptTemplate Parse(string text, string source = "prompt template")
    {
        ArgumentNullException.ThrowIfNull(text);
        var cut = text.IndexOf(FileSeparator, StringComparison.Ordinal);
        string withInput;
        string withoutInput;
        if (cut >= 0)
        {
            withInput = text[..cut];
            withoutInput = text[(cut + FileSeparator.Length)..];
            if (!withInput.Contains(InputPlaceholder, StringComparison.Ordinal))
            {
                throw new FormatException($"{source}: the template with input (before '=====') has no {InputPlaceholder} placeholder");
            }
        }
        else
        {
            withInput = text;
            withoutInput = text;
        }

        if (!withInput.Contains(InstructionPlaceholder, StringComparison.Ordinal))
        {
            throw new FormatException($"{source}: the template has no {InstructionPlaceholder} placeholder");
        }

        if (!withoutInput.Contains(InstructionPlaceholder, StringComparison.Ordinal))
        {
            throw new FormatException($"{source}: the template without input (after '=====') has no {InstructionPlaceholder} placeholder");
        }

        return new PromptTemplate(withInput, withoutInput);
    }

    private static string Fill(string template, string instruction, string input)
    {
        var result = new System.Text.StringBuilder(template.Length + instruction.Length + input.Length);
        var i = 0;
        while (i < template.Length)
        {
            if (string.CompareOrdinal(template, i, InstructionPlaceholder, 0, InstructionPlaceholder.Length) == 0)
            {
                result.Append(instruction);
                i += InstructionPlaceholder.Length;
            }
            else if (string.CompareOrdinal(template, i, InputPlaceholder, 0, InputPlaceholder.Length) == 0)
            {
                result.Append(input);
                i += InputPlaceholder.Length;
            }
            else
            {
                result.Append(template[i]);
                i++;
            }
        }

        return result.ToString();
    }
}
