namespace CoLM.Cluster.Configuration;

/// <summary>A setting that is unknown, ill-typed or out of range; the message names the HOCON path.</summary>
public sealed class ConfigException(string path, string problem)
    : Exception($"config {path}: {problem}")
{
    public string Path { get; } = path;
}
