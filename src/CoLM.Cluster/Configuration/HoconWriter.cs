using System.Text;
using System.Text.Json;
using Akka.Configuration;
using Akka.Configuration.Hocon;

namespace CoLM.Cluster.Configuration;

/// <summary>
/// Writes a resolved config subtree back as HOCON that parses to the same values: every leaf
/// JSON-quoted (so a path with '//' is never read as a comment), lists as lists.
/// </summary>
public static class HoconWriter
{
    public static string Write(Config config, string root)
    {
        var sb = new StringBuilder();
        sb.Append(root).Append(' ');
        WriteValue(sb, config.GetValue(root), 0);
        sb.AppendLine();
        return sb.ToString();
    }

    /// <summary>
    /// Akka's HOCON reports `[]` as neither an array nor empty: its elements are an empty array
    /// and, when a comment follows on the line, a whitespace literal.
    /// </summary>
    public static bool IsEmptyList(HoconValue value) =>
        value.Values.Any(e => e.IsArray())
        && value.Values.All(e => e.IsArray() ? e.GetArray().Count == 0 : e.IsString() && e.GetString().Trim().Length == 0);

    private static void WriteValue(StringBuilder sb, HoconValue value, int depth)
    {
        if (value.IsObject())
        {
            sb.AppendLine("{");
            foreach (var (key, child) in value.GetObject().Items.OrderBy(x => x.Key, StringComparer.Ordinal))
            {
                sb.Append(' ', 2 * (depth + 1)).Append(JsonSerializer.Serialize(key)).Append(" = ");
                WriteValue(sb, child, depth + 1);
                sb.AppendLine();
            }
            sb.Append(' ', 2 * depth).Append('}');
        }
        else if (IsEmptyList(value))
        {
            sb.Append("[]");
        }
        else if (value.IsArray())
        {
            sb.Append('[').Append(string.Join(", ", value.GetArray().Select(v => JsonSerializer.Serialize(v.GetString())))).Append(']');
        }
        else
        {
            sb.Append(JsonSerializer.Serialize(value.GetString()));
        }
    }
}
