using System.Text.Json;

namespace CoLM.Data;

/// <summary>Parses one JSONL line into a RawExample, reporting problems with their origin.</summary>
internal static class JsonlLineParser
{
    public static RawExample Parse(string line, string origin, JsonlFields fields) => ParseObject(line, origin, root =>
    {
        var source = RequiredSource(root, fields.Source, origin);
        var prompt = RequiredString(root, fields.Prompt, origin);
        var target = RequiredString(root, fields.Target, origin);
        return new RawExample(source, prompt, target, origin);
    });

    /// <summary>Parses a line that must be one JSON object and maps it; malformed JSON and non-objects are named by origin.</summary>
    internal static T ParseObject<T>(string line, string origin, Func<JsonElement, T> map)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            throw new DataFormatException(origin, $"malformed JSON ({e.Message})", e);
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new DataFormatException(origin, $"line is not a JSON object (found {Describe(root.ValueKind)})");
            }

            return map(root);
        }
    }

    internal static string RequiredSource(JsonElement root, string field, string origin)
    {
        var source = RequiredString(root, field, origin);
        if (string.IsNullOrWhiteSpace(source))
        {
            throw new DataFormatException(origin, $"empty source in field '{field}'");
        }

        return source;
    }

    internal static string RequiredString(JsonElement obj, string field, string origin)
    {
        if (!obj.TryGetProperty(field, out var value))
        {
            throw new DataFormatException(origin, $"missing field '{field}'");
        }

        if (value.ValueKind != JsonValueKind.String)
        {
            throw new DataFormatException(origin, $"field '{field}' is not a string (found {Describe(value.ValueKind)})");
        }

        return value.GetString()!;
    }

    internal static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        JsonValueKind.Null => "null",
        _ => kind.ToString(),
    };
}
