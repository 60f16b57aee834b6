namespace CoLM.Training;

/// <summary>What a trainer computes about its share of the pool for the selection method.</summary>
public enum SketchKind
{
    LossOnly,     // per-example loss (big-loss, small-loss)
    ZerothOrder,  // loss + K zeroth-order coefficients per example (colm with feature zo / paper)
    Exact,        // loss + the exact last-layer V LoRA-B gradient per example (feature exact)
}

/// <summary>
/// Per-example results for one trainer's share of the pool: losses, and either row-major
/// [N x K] zeroth-order coefficients or row-major [N x P] exact features (the other empty).
/// </summary>
public sealed record SketchOutcome(float[] Losses, float[] Coefficients, float[] Features, TimeSpan Elapsed);

/// <summary>
/// What one replica did in one optimizer step; timings are this replica's own. <paramref name="Tokens"/>:
/// the target tokens its examples had (the loss's); <paramref name="GradNorm"/>: the global gradient's
/// L2 norm after the all-reduce, before clipping (the same on every replica);
/// <paramref name="PeakMemoryBytes"/>: its process's peak resident memory so far (VmHWM, 0 where unknown).
/// </summary>
public sealed record TrainOutcome(
    double WeightedLossSum, int Examples, TimeSpan Compute, TimeSpan AllReduce, TimeSpan Optimizer,
    ulong? Checksum, int Tokens = 0, double GradNorm = 0, long PeakMemoryBytes = 0);

/// <summary>Held-out results for a set of examples, in the order they were asked for.</summary>
public sealed record EvalOutcome(float[] Losses, bool[] ExactMatch);
