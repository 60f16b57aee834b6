namespace CoLM.Data;

/// <summary>
/// One synthetic source: a skill with a short exact-match answer. Share is its fraction of the train
/// set; PromptSpace is how many distinct prompts it can produce, which bounds how many held-out
/// prompts we can reserve while leaving enough for training.
/// </summary>
internal sealed record SyntheticSkill(string Name, double Share, int PromptSpace, Func<SplitMix64, (string Prompt, string Target)> Draw);
