using System.Reflection;
using Akka.Configuration;
using Akka.Configuration.Hocon;

namespace CoLM.Cluster.Configuration;

/// <summary>
/// Layers HOCON in precedence order: --set overrides, then --config files, then the embedded
/// defaults (hocon/colm.conf, hocon/akka.conf). Keys under `colm` must exist in the defaults.
/// </summary>
public static class HoconSources
{
    public static Config Defaults() => Embedded("colm.conf").WithFallback(Embedded("akka.conf"));

    public static Config Embedded(string name)
    {
        using var stream = typeof(HoconSources).Assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"embedded HOCON '{name}' missing from the build");
        using var reader = new StreamReader(stream);
        return ConfigurationFactory.ParseString(reader.ReadToEnd());
    }

    /// <summary>Parses a user's HOCON file; a syntax error names the file.</summary>
    public static Config ParseFile(string path)
    {
        if (!File.Exists(path)) throw new ConfigException(path, "config file not found");
        try
        {
            return ConfigurationFactory.ParseString(File.ReadAllText(path));
        }
        catch (Exception e) when (e is not ConfigException)
        {
            throw new ConfigException(path, $"not valid HOCON: {e.Message}");
        }
    }

    /// <summary>A HOCON quoted string holding <paramref name="value"/> literally (backslashes and quotes escaped).</summary>
    public static string Quote(string value) => "\"" + value.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";

    /// <summary>Parses one `--set path=value`; the value is taken literally unless it is a HOCON list or object.</summary>
    public static Config ParseSet(string assignment)
    {
        int eq = assignment.IndexOf('=');
        if (eq <= 0) throw new ConfigException(assignment, "--set expects path=value");
        string path = assignment[..eq].Trim();
        string value = assignment[(eq + 1)..].Trim();
        bool structured = value.StartsWith('[') || value.StartsWith('{') || value.StartsWith('"');
        // Quote plain values so paths with '//' or ':' are never read as comments or separators.
        string literal = structured ? value : Quote(value);
        try
        {
            return ConfigurationFactory.ParseString($"{path} = {literal}");
        }
        catch (Exception e)
        {
            throw new ConfigException(path, $"cannot parse --set value '{value}': {e.Message}");
        }
    }

    /// <summary>
    /// Settings from the environment, for launchers that cannot pass flags: COLM__TRAIN__STEPS=100
    /// sets colm.train.steps; '__' separates path segments and '_' stands for '-'.
    /// </summary>
    public static IEnumerable<(string Origin, Config Config)> FromEnvironment(System.Collections.IDictionary environment)
    {
        const string prefix = "COLM__";
        foreach (var name in environment.Keys.Cast<string>().Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            var segments = name[prefix.Length..].Split("__").Select(x => x.ToLowerInvariant().Replace('_', '-'));
            string path = "colm." + string.Join('.', segments);
            yield return ($"environment variable {name}", ParseSet($"{path}={environment[name]}"));
        }
    }

    /// <summary>Every leaf path of <paramref name="config"/> under colm must be a leaf path of <paramref name="defaults"/>.</summary>
    public static void RejectUnknownKeys(Config config, Config defaults, string origin)
    {
        foreach (var (path, _) in Leaves(config.Root, ""))
        {
            string top = path.Split('.')[0];
            if (top == "akka") continue;
            if (top != "colm")
                throw new ConfigException(path, $"unknown setting (from {origin}); settings live under colm {{ }} or akka {{ }}");
            if (!defaults.HasPath(path) || defaults.GetValue(path).IsObject())
                throw new ConfigException(path, $"unknown setting (from {origin}); see hocon/colm.conf for the valid keys");
        }
    }

    private static IEnumerable<(string Path, HoconValue Value)> Leaves(HoconValue value, string prefix)
    {
        if (value.IsObject())
        {
            foreach (var (key, child) in value.GetObject().Items)
            {
                string path = prefix.Length == 0 ? key : $"{prefix}.{key}";
                foreach (var leaf in Leaves(child, path)) yield return leaf;
            }
        }
        else if (prefix.Length > 0)
        {
            yield return (prefix, value);
        }
    }
}
