using static TorchSharp.torch;

namespace CoLM.Model;

/// <summary>
/// Exact per-example gradient of each example's loss w.r.t. <see cref="CausalDecoder.SketchParameter"/>,
/// flattened row-major like the parameter: float[B x P], P = KvDim * Rank (Dim * Rank without grouped-query attention).
/// </summary>
/// <remarks>
/// One batched backward through the last layer only, no per-example loop. The sketch parameter is the
/// B of v = W x + s B(u), u = A x, so for example i: dLoss_i/dB = s * sum_t dV_i[t] u_i[t]^T, where
/// dV_i is the gradient w.r.t. v_proj's output. Rows of a batch never interact (causal attention within a
/// row, per-token norms and MLP), so the gradient of sum_i loss_i w.r.t. the (B, T, Dim) output holds
/// every dV_i at once. Runs in eval mode (no dropout), like the zeroth-order sketch; restores the mode.
/// Uses autograd.grad, so parameters' .grad fields are left untouched.
/// </remarks>
public static class ExactSketchGradient
{
    public static float[] Compute(CausalDecoder model, TokenBatch batch)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batch);
        using var scope = NewDisposeScope();
        var projection = model.SketchProjection;
        bool wasTraining = model.training;
        model.eval();
        try
        {
            Tensor trunk;
            using (no_grad()) trunk = model.ForwardTrunk(batch.Inputs);               // (B, T, D), no graph
            using var gradMode = enable_grad();
            var tap = new LoraTap();
            var logits = model.ForwardHead(trunk, tap);
            var total = TokenLoss.PerExample(logits, batch.Targets, batch.Mask).sum();
            var outputGrad = autograd.grad([total], [tap.Output!])[0];                // (B, T, KvDim)
            var hidden = tap.LoraHidden!.detach();                                    // (B, T, r)
            var perExample = outputGrad.to_type(hidden.dtype).transpose(1, 2).matmul(hidden) * projection.Scale; // (B, KvDim, r)
            return TensorCopy.ToFloatArray(perExample.reshape(perExample.shape[0], -1));
        }
        finally
        {
            model.train(wasTraining);
        }
    }
}
