namespace CoLM.Training;

/// <summary>Per-example sketch of one trainer's share of the pool (COLM.md step 4).</summary>
public sealed record SketchOutcome(float[] Losses, float[] Coefficients, TimeSpan Elapsed);

/// <summary>What one replica did in one optimizer step; timings are this replica's own.</summary>
public sealed record TrainOutcome(
    double WeightedLossSum, int Examples, TimeSpan Compute, TimeSpan AllReduce, TimeSpan Optimizer,
    ulong? Checksum);

/// <summary>Held-out results for a set of examples, in the order they were asked for.</summary>
public sealed record EvalOutcome(float[] Losses, bool[] ExactMatch);
