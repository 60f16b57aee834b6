namespace CoLM.Data;

/// <summary>One untokenized example. Origin ("file:line" or a synthetic tag) lets errors and
/// evaluation reports point back at the input that produced it.</summary>
public sealed record RawExample(string Source, string Prompt, string Target, string Origin);
