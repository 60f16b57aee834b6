using static TorchSharp.torch;

namespace CoLM.Model;

/// <summary>Per-example next-token cross-entropy over each example's own target tokens.</summary>
public static class TokenLoss
{
    /// <summary>
    /// logits (B, T, V), targets (B, T) int64, mask (B, T) 0/1 -> (B): the mean cross-entropy over
    /// each row's masked positions (divided by that row's own target count, never the padded width;
    /// a row with an empty mask gives 0). Masked-out positions never contribute, whatever their
    /// target id. Half-precision logits are widened to fp32 first; the result has the (widened)
    /// logits' dtype.
    /// </summary>
    public static Tensor PerExample(Tensor logits, Tensor targets, Tensor mask)
    {
        if (logits.ndim != 3 || targets.ndim != 2 || mask.ndim != 2)
            throw new ArgumentException("Expected logits (B, T, V), targets (B, T) and mask (B, T).");
        using var scope = NewDisposeScope();
        var keep = mask.ne(HeldScalars.Zero);                                                        // (B, T) bool
        var wide = logits.dtype is ScalarType.Float16 or ScalarType.BFloat16 ? logits.to_type(float32) : logits;
        var logProbs = wide.log_softmax(-1);                                           // (B, T, V)
        var safeTargets = targets.masked_fill(keep.logical_not(), HeldScalars.Zero).unsqueeze(-1);  // (B, T, 1)
        var tokenLoss = logProbs.gather(-1, safeTargets).squeeze(-1).neg();         // (B, T)
        var summed = where(keep, tokenLoss, zeros_like(tokenLoss)).sum(1);          // (B)
        var counts = keep.sum(1, type: wide.dtype).clamp_min(HeldScalars.One);                     // (B)
        return (summed / counts).MoveToOuterDisposeScope();
    }
}
