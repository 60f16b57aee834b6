namespace CoLM.Selection;

/// <summary>The selector's private Adam-like history (COLM.md step 5), for checkpoints.</summary>
/// <param name="M">First moment, one value per feature dim.</param>
/// <param name="V">Second moment, one value per feature dim.</param>
/// <param name="Step">How many selections have updated the history; bias correction uses Step + 1.</param>
public sealed record NormalizerState(float[] M, float[] V, long Step);
