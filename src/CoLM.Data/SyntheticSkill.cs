using CoLM.Determinism;
namespace CoLM.Data;

/// <summary>
/// One synthetic source: a skill with a short exact-match answer. Share is its fraction of the train
/// set; PromptSpace is how many distinct prompts it can produce, which bounds how many held-out
/// prompts we can reserve while leaving enough for training. DrawHeldout, when given, is the
/// distribution the skill is evaluated on where the training data is skewed away from it. A skill
/// with Share 0 is held-out only: a task evaluated that no training example shows.
/// </summary>
internal sealed record SyntheticSkill(string Name, double Share, int PromptSpace, Func<SplitMix64, (string Prompt, string Target)> Draw)
{
    public Func<SplitMix64, (string Prompt, string Target)>? DrawHeldout { get; init; }

    public bool HeldoutOnly => Share == 0;
}
