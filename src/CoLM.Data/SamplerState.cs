namespace CoLM.Data;

/// <summary>Where a PoolSampler is: the epoch and the next position in that epoch's permutation.
/// Small and serializable, so it can be checkpointed with the model.</summary>
public sealed record SamplerState(long Epoch, int Position);
