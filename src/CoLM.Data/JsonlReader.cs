using System.Text;

namespace CoLM.Data;

/// <summary>Streams examples from a JSONL file, one object per line; blank lines are skipped but
/// still counted, so reported line numbers match what an editor shows.</summary>
public static class JsonlReader
{
    public static IEnumerable<RawExample> Read(string path, JsonlFields fields)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(fields);
        ValidateFields(fields);
        // Checked here rather than inside the iterator so a wrong path fails at the call site.
        if (!File.Exists(path))
        {
            throw new DataFormatException(path, "file not found");
        }

        return ReadLines(path, (line, origin) => JsonlLineParser.Parse(line, origin, fields));
    }

    /// <summary>
    /// The line loop every JSONL reader shares: blank lines skipped but counted (origins are
    /// "path:line" as an editor shows them), and a file with no example is an error.
    /// </summary>
    internal static IEnumerable<T> ReadLines<T>(string path, Func<string, string, T> parse)
    {
        using var reader = new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        var lineNumber = 0;
        var examples = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            examples++;
            yield return parse(line, $"{path}:{lineNumber}");
        }

        if (examples == 0)
        {
            throw new DataFormatException(path, "empty dataset (no examples)");
        }
    }

    internal static void ValidateFields(JsonlFields fields)
    {
        foreach (var (setting, name) in new[] { ("Source", fields.Source), ("Prompt", fields.Prompt), ("Target", fields.Target) })
        {
            if (string.IsNullOrEmpty(name))
            {
                throw new DataFormatException($"{nameof(JsonlFields)}.{setting}", "field name must not be empty");
            }
        }
    }
}
