using YamlDotNet.RepresentationModel;

namespace CoLM.Deploy.Tests;

/// <summary>Finds the repository (the folder holding CoLM.Cluster.sln) and reads deploy/ files as plain trees.</summary>
internal static class Repo
{
    public static readonly string Root = FindRoot();

    public static string Deploy => Path.Combine(Root, "deploy");

    public static string PathOf(string relative) => Path.Combine(Root, relative.Replace('/', Path.DirectorySeparatorChar));

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "CoLM.Cluster.sln")))
                return dir.FullName;
        throw new InvalidOperationException("CoLM.Cluster.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>
    /// Every document of a YAML file, as nested dictionaries (mappings), lists (sequences) and
    /// strings (scalars); YAML errors throw with the file's name.
    /// </summary>
    public static IReadOnlyList<Dictionary<string, object?>> Documents(string relative)
    {
        var stream = new YamlStream();
        using (var reader = new StringReader(File.ReadAllText(PathOf(relative))))
        {
            try
            {
                stream.Load(reader);
            }
            catch (YamlDotNet.Core.YamlException e)
            {
                throw new InvalidOperationException($"{relative}: not valid YAML: {e.Message}", e);
            }
        }
        return stream.Documents
            .Select(d => Plain(d.RootNode) as Dictionary<string, object?>
                ?? throw new InvalidOperationException($"{relative}: a document is not a mapping"))
            .ToList();
    }

    public static Dictionary<string, object?> Document(string relative) => Assert.Single(Documents(relative));

    private static object? Plain(YamlNode node) => node switch
    {
        YamlMappingNode map => map.Children.ToDictionary(
            kv => ((YamlScalarNode)kv.Key).Value ?? "", kv => Plain(kv.Value), StringComparer.Ordinal),
        YamlSequenceNode seq => seq.Children.Select(Plain).ToList(),
        YamlScalarNode scalar => scalar.Value,
        _ => throw new InvalidOperationException($"unsupported YAML node {node.NodeType} at {node.Start}"),
    };

    // Navigation over the plain trees: a missing key or a wrong type fails the test with the path.
    public static Dictionary<string, object?> Map(this Dictionary<string, object?> map, string path) =>
        Get(map, path) as Dictionary<string, object?> ?? throw new Xunit.Sdk.XunitException($"{path} is not a mapping");

    public static List<object?> List(this Dictionary<string, object?> map, string path) =>
        Get(map, path) as List<object?> ?? throw new Xunit.Sdk.XunitException($"{path} is not a sequence");

    public static string Str(this Dictionary<string, object?> map, string path) =>
        Get(map, path) as string ?? throw new Xunit.Sdk.XunitException($"{path} is not a scalar");

    public static IEnumerable<Dictionary<string, object?>> Maps(this Dictionary<string, object?> map, string path) =>
        map.List(path).Cast<Dictionary<string, object?>>();

    public static IReadOnlyList<string> Strings(this Dictionary<string, object?> map, string path) =>
        map.List(path).Select(x => x as string ?? throw new Xunit.Sdk.XunitException($"{path} holds a non-scalar")).ToList();

    public static object? Get(Dictionary<string, object?> map, string path)
    {
        object? current = map;
        foreach (string key in path.Split('.'))
        {
            if (current is not Dictionary<string, object?> m || !m.TryGetValue(key, out current))
                throw new Xunit.Sdk.XunitException($"missing key {path}");
        }
        return current;
    }

    /// <summary>The value after <paramref name="flag"/> in an argument list.</summary>
    public static string Flag(IReadOnlyList<string> args, string flag)
    {
        int i = args.ToList().IndexOf(flag);
        Assert.True(i >= 0 && i + 1 < args.Count, $"{flag} missing in: {string.Join(' ', args)}");
        return args[i + 1];
    }
}
