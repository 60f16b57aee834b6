namespace CoLM.Model.SafeTensors;

/// <summary>A safetensors file or index that is truncated, malformed or inconsistent. The message is "PATH: problem".</summary>
public sealed class SafeTensorsFormatException(string path, string problem) : Exception($"{path}: {problem}")
{
    /// <summary>The file (or index) the problem was found in.</summary>
    public string FilePath { get; } = path;

    /// <summary>The problem, without the path.</summary>
    public string Problem { get; } = problem;
}
