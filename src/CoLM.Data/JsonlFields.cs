namespace CoLM.Data;

/// <summary>Which JSON properties hold the source, prompt and target. Defaults match MathInstruct.</summary>
public sealed record JsonlFields(string Source = "source", string Prompt = "instruction", string Target = "output");
