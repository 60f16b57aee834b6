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

        return ReadLines(path, fields);
    }

    private static IEnumerable<RawExample> ReadLines(string path, JsonlFields fields)
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
            yield return JsonlLineParser.Parse(line, $"{path}:{lineNumber}", fields);
        }

        if (examples == 0)
        {
            throw new DataFormatException(path, "empty dataset (no examples)");
        }
    }

    private static void ValidateFields(JsonlFields fields)
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
