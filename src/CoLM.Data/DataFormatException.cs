namespace CoLM.Data;

/// <summary>
/// Any bad input to the data layer: a malformed JSONL line, a missing field, an impossible setting.
/// The message always starts with where the problem is ("file:line" or the setting name) so a user
/// can jump straight to it instead of bisecting a 262k-line file.
/// </summary>
public sealed class DataFormatException : Exception
{
    public DataFormatException(string origin, string problem)
        : base($"{origin}: {problem}")
    {
        Origin = origin;
        Problem = problem;
    }

    public DataFormatException(string origin, string problem, Exception inner)
        : base($"{origin}: {problem}", inner)
    {
        Origin = origin;
        Problem = problem;
    }

    /// <summary>"file:line", a file path, or a setting name.</summary>
    public string Origin { get; }

    /// <summary>What is wrong, without the origin prefix.</summary>
    public string Problem { get; }
}
