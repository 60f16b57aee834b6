using System.Text;
using System.Text.Json;

namespace CoLM.Data;

/// <summary>Which JSON properties hold the parts of a SuperGLUE-style classification example.</summary>
public sealed record ClassificationFields(
    string Source = "source",
    string Text = "text",
    string Premise = "premise",
    string Hypothesis = "hypothesis",
    string Label = "label");

/// <summary>
/// Reads classification JSONL (SuperGLUE style) as prompt/target examples: the prompt is the text, or
/// "premise\nhypothesis" when there is no text; the target is the label word. A label may be an
/// integer index into the label words, a string naming one of them (case-insensitively; the target is
/// the word as given in the list), or a boolean (false = index 0, true = index 1, as in BoolQ).
/// Blank lines are skipped but counted; errors are <see cref="DataFormatException"/> "file:line: ...".
/// </summary>
public static class ClassificationJsonl
{
    public static IEnumerable<RawExample> Read(string path, ClassificationFields fields, IReadOnlyList<string> labelWords)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(fields);
        ArgumentNullException.ThrowIfNull(labelWords);
        ValidateSettings(fields, labelWords);
        if (!File.Exists(path))
        {
            throw new DataFormatException(path, "file not found");
        }

        return JsonlReader.ReadLines(path, LineParser(fields, labelWords));
    }

    /// <summary>Parses one classification line (origin "path:line") into an example: the prompt and its label word as target.</summary>
    public static Func<string, string, RawExample> LineParser(ClassificationFields fields, IReadOnlyList<string> labelWords)
    {
        ArgumentNullException.ThrowIfNull(fields);
        ArgumentNullException.ThrowIfNull(labelWords);
        ValidateSettings(fields, labelWords);
        var words = labelWords.ToArray();
        return (line, origin) => JsonlLineParser.ParseObject(line, origin, root =>
            new RawExample(JsonlLineParser.RequiredSource(root, fields.Source, origin), Prompt(root, fields, origin),
                Target(root, fields.Label, words, origin), origin));
    }

    /// <summary>
    /// "math" or "classification", from the fields of the first example of a JSONL file: a <paramref name="mathPrompt"/>
    /// field means math (MathInstruct style), else a text or premise field with a label field means classification.
    /// Anything else is a <see cref="DataFormatException"/> naming file and line.
    /// </summary>
    public static string DetectFormat(string path, string mathPrompt, ClassificationFields fields)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(fields);
        if (!File.Exists(path))
        {
            throw new DataFormatException(path, "file not found");
        }

        return JsonlReader.ReadLines(path, (line, origin) => JsonlLineParser.ParseObject(line, origin, root =>
        {
            if (root.TryGetProperty(mathPrompt, out _))
            {
                return "math";
            }

            if ((root.TryGetProperty(fields.Text, out _) || root.TryGetProperty(fields.Premise, out _)) && root.TryGetProperty(fields.Label, out _))
            {
                return "classification";
            }

            throw new DataFormatException(origin,
                $"cannot tell the format: neither a '{mathPrompt}' field (math) nor '{fields.Text}' or '{fields.Premise}' with '{fields.Label}' (classification)");
        })).First();
    }

    private static string Prompt(JsonElement root, ClassificationFields fields, string origin)
    {
        // A null text counts as absent, so mixed files can carry "text": null on pair examples.
        if (root.TryGetProperty(fields.Text, out var text) && text.ValueKind != JsonValueKind.Null)
        {
            if (text.ValueKind != JsonValueKind.String)
            {
                throw new DataFormatException(origin, $"field '{fields.Text}' is not a string (found {JsonlLineParser.Describe(text.ValueKind)})");
            }

            return text.GetString()!;
        }

        var hasPremise = root.TryGetProperty(fields.Premise, out _);
        var hasHypothesis = root.TryGetProperty(fields.Hypothesis, out _);
        if (!hasPremise && !hasHypothesis)
        {
            throw new DataFormatException(origin, $"missing field '{fields.Text}' (or '{fields.Premise}' and '{fields.Hypothesis}')");
        }

        if (!hasPremise || !hasHypothesis)
        {
            var missing = hasPremise ? fields.Hypothesis : fields.Premise;
            throw new DataFormatException(origin, $"missing field '{missing}' (needed with '{(hasPremise ? fields.Premise : fields.Hypothesis)}' when there is no '{fields.Text}')");
        }

        return JsonlLineParser.RequiredString(root, fields.Premise, origin) + "\n" + JsonlLineParser.RequiredString(root, fields.Hypothesis, origin);
    }

    private static string Target(JsonElement root, string field, string[] labelWords, string origin)
    {
        if (!root.TryGetProperty(field, out var label))
        {
            throw new DataFormatException(origin, $"missing field '{field}'");
        }

        switch (label.ValueKind)
        {
            case JsonValueKind.Number:
                if (!label.TryGetInt64(out var index))
                {
                    throw new DataFormatException(origin, $"field '{field}' is not an integer (found {label.GetRawText()})");
                }

                if (index < 0 || index >= labelWords.Length)
                {
                    throw new DataFormatException(origin, $"field '{field}' index {index} out of range (expected 0..{labelWords.Length - 1} for {labelWords.Length} label words)");
                }

                return labelWords[index];
            case JsonValueKind.True or JsonValueKind.False:
                var flag = label.ValueKind == JsonValueKind.True ? 1 : 0;
                if (flag >= labelWords.Length)
                {
                    throw new DataFormatException(origin, $"field '{field}' is true but there is only one label word");
                }

                return labelWords[flag];
            case JsonValueKind.String:
                var word = label.GetString()!;
                foreach (var candidate in labelWords)
                {
                    if (string.Equals(candidate, word, StringComparison.OrdinalIgnoreCase))
                    {
                        return candidate;
                    }
                }

                throw new DataFormatException(origin, $"field '{field}' has unknown label word '{word}' (expected one of: {string.Join(", ", labelWords)})");
            default:
                throw new DataFormatException(origin, $"field '{field}' is not an integer or string (found {JsonlLineParser.Describe(label.ValueKind)})");
        }
    }

    private static void ValidateSettings(ClassificationFields fields, IReadOnlyList<string> labelWords)
    {
        foreach (var (setting, name) in new[]
                 {
                     ("Source", fields.Source), ("Text", fields.Text), ("Premise", fields.Premise),
                     ("Hypothesis", fields.Hypothesis), ("Label", fields.Label),
                 })
        {
            if (string.IsNullOrEmpty(name))
            {
                throw new DataFormatException($"{nameof(ClassificationFields)}.{setting}", "field name must not be empty");
            }
        }

        LabelAccuracy.ValidateLabelWords(labelWords);
    }
}

/// <summary>
/// Accuracy over label words: a generation is right when the label word it starts with (after trimming,
/// case-insensitively, and ending at a non-letter/digit so "yesterday" is not "yes") is the label.
/// When several label words match (e.g. "entailment" and "entailment_strict"), the longest wins.
/// </summary>
public static class LabelAccuracy
{
    public static bool Matches(string generated, string label, IReadOnlyList<string> labelWords)
    {
        ArgumentNullException.ThrowIfNull(generated);
        ArgumentNullException.ThrowIfNull(label);
        ArgumentNullException.ThrowIfNull(labelWords);
        ValidateLabelWords(labelWords);
        if (!labelWords.Any(w => string.Equals(w, label, StringComparison.OrdinalIgnoreCase)))
        {
            throw new DataFormatException(nameof(label), $"'{label}' is not one of the label words ({string.Join(", ", labelWords)})");
        }

        var text = generated.AsSpan().Trim();
        string? best = null;
        foreach (var word in labelWords)
        {
            var w = word.AsSpan().Trim();
            if (text.StartsWith(w, StringComparison.OrdinalIgnoreCase)
                && (text.Length == w.Length || !char.IsLetterOrDigit(text[w.Length]))
                && (best is null || w.Length > best.Trim().Length))
            {
                best = word;
            }
        }

        return best is not null && string.Equals(best.Trim(), label.Trim(), StringComparison.OrdinalIgnoreCase);
    }

    internal static void ValidateLabelWords(IReadOnlyList<string> labelWords)
    {
        if (labelWords.Count == 0)
        {
            throw new DataFormatException("labelWords", "must contain at least one label word");
        }

        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < labelWords.Count; i++)
        {
            var word = labelWords[i];
            if (string.IsNullOrWhiteSpace(word))
            {
                throw new DataFormatException("labelWords", $"label word {i} is empty");
            }

            if (!seen.Add(word.Trim()))
            {
                throw new DataFormatException("labelWords", $"label word '{word}' appears twice (label words compare case-insensitively)");
            }
        }
    }
}
