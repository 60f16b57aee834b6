using CoLM.Selection;
using TorchSharp;
using static TorchSharp.torch;

namespace CoLM.Model;

/// <summary>Per-example losses (B) and sketch coefficients c_ik, row-major [B x K].</summary>
public sealed record SketchResult(float[] Losses, float[] Coefficients);

/// <summary>
/// The zeroth-order (SPSA / MeZO) gradient sketch of COLM.md step 4, on <see cref="CausalDecoder.SketchParameter"/>:
/// c_ik = (loss_i(theta + eps z_k) - loss_i(theta - eps z_k)) / (2 eps), with z_k from
/// <see cref="ProbeDirections"/> so that anyone holding the probe seed rebuilds g_i = (1/K) sum_k c_ik z_k.
/// Both sides of every difference run in eval mode (no dropout); the model's mode is given back.
/// </summary>
public static class ZerothOrderSketch
{
    /// <summary>
    /// The sketch, without touching the parameter. The perturbation is B +- eps z_k on the last layer's v_proj
    /// LoRA B, so v_proj's output moves by dV = +- eps s u z_k^T (u = A x, s = alpha / r) and, attention
    /// being linear in V, each head's output moves by +- eps s (P u) z_k^T (rows of z_k for that head) while
    /// the softmax weights P, the queries, keys and V0 stay put. So: the trunk, P V0 and P u once; then only
    /// the target positions (Mask != 0), the only ones the loss reads, go through the per-position rest of
    /// the head (o_proj, MLP, norms, lm_head), all 2K + 1 variants (unperturbed, +eps, -eps) in one pass
    /// (memory: (2K + 1) x targets x HiddenDim values). Every LoRA adapter is folded into its weight for the
    /// duration (W + s B A, one matmul per projection). Equal to <see cref="ComputeReference"/> up to fp32
    /// rounding, since sums are reordered: about one ulp of a loss, so |c_fast - c_ref| ~ ulp(loss) / (2 eps).
    /// Deterministic: the same inputs give the same bits.
    /// </summary>
    public static SketchResult Compute(CausalDecoder model, TokenBatch batch, long probeSeed, int probes, double epsilon)
    {
        Validate(model, batch, probes, epsilon);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var sketch = model.SketchParameter;
        double scale = model.SketchScale;
        bool wasTraining = model.training;
        model.eval(); // no dropout: both sides of a difference must see the same function
        try
        {
            using var folded = model.FoldAdapters(); // W + s B A: one matmul per projection; the sketch reads A and B only
            long examples = batch.Inputs.shape[0], time = batch.Inputs.shape[1];
            var shape = model.LastAttentionShape;
            long heads = shape.Heads, headDim = shape.HeadDim, width = shape.MixWidth;
            long rank = sketch.shape[1], variants = 2L * probes + 1;

            var trunk = model.ForwardTrunk(batch.Inputs);                              // (B, T, D)
            long dim = trunk.shape[2];
            var (mixedValues, mixedHidden) = model.MixLastAttention(trunk);            // (B, T, H*hd), (B, T, H, r)

            // The target positions, as flat indices b * T + t, ascending.
            var keep = batch.Mask.ne(0);                                               // (B, T) bool
            var rows = keep.reshape(-1).nonzero().reshape(-1);                         // (N)
            long n = rows.shape[0];
            var residual = trunk.reshape(-1, dim).index_select(0, rows);               // (N, D)
            var unperturbed = mixedValues.reshape(-1, width).index_select(0, rows);    // (N, H*hd) = P V0
            var hidden = mixedHidden.reshape(-1, heads, rank).index_select(0, rows)    // (N, H, r) = P u
                .to_type(sketch.dtype);

            // Head h's output moves by eps s z_k[h] (P u)_h, z_k[h] = rows j*hd .. (j+1)*hd - 1 of z_k for h's kv head
            // j = h / (H / KV) (j = h without grouped-query attention).
            long kvHeads = shape.KvHeads;
            var z = Probes(probeSeed, probes, sketch)                                  // (K, KV*hd, r)
                .view(probes, kvHeads, headDim, rank);                                 // (K, KV, hd, r)
            if (kvHeads != heads) z = z.repeat_interleave(heads / kvHeads, dim: 1);    // (K, H, hd, r)
            z = z.transpose(2, 3);                                                     // (K, H, r, hd)
            using var step = (epsilon * scale).ToScalar(); // disposed after the native call (HeldScalars)
            var delta = hidden.permute(1, 0, 2).matmul(z)                              // (H, N, r) @ (K, H, r, hd) -> (K, H, N, hd)
                .permute(0, 2, 1, 3).reshape(probes, n, width)                         // (K, N, H*hd)
                .mul_(step);
            // With a half-precision compute dtype the variants are formed in fp32 and rounded once.
            var centre = unperturbed.to_type(delta.dtype).unsqueeze(0);                // (1, N, H*hd)
            var mixed = cat([centre, centre + delta, centre - delta], 0)              // (2K+1, N, H*hd)
                .to_type(unperturbed.dtype);

            var logits = model.ForwardAfterLastMix(residual, mixed);                   // (2K+1, N, V)
            if (logits.dtype is ScalarType.Float16 or ScalarType.BFloat16) logits = logits.to_type(float32);
            var targets = batch.Targets.reshape(-1).index_select(0, rows)              // (N)
                .expand(variants, n).unsqueeze(-1);                                    // (2K+1, N, 1)
            var tokenLoss = logits.log_softmax(-1).gather(-1, targets).squeeze(-1).neg(); // (2K+1, N)

            // Per-example means over each example's own targets, summed in the layout TokenLoss uses:
            // scattered back to (B, T) with zeros elsewhere (index_copy_ with distinct indices is
            // deterministic on every device, unlike an accumulating index_add_), then summed over T.
            var dense = zeros([variants, examples * time], tokenLoss.dtype, tokenLoss.device)
                .index_copy_(1, rows, tokenLoss)
                .view(variants, examples, time);                                       // (2K+1, B, T)
            var counts = keep.sum(1, type: tokenLoss.dtype).clamp_min(1.0);            // (B)
            var perExample = dense.sum(-1) / counts;                                   // (2K+1, B)

            var plus = perExample.narrow(0, 1, probes).to_type(float64);               // (K, B)
            var minus = perExample.narrow(0, 1 + probes, probes).to_type(float64);     // (K, B)
            var table = ((plus - minus) / (2.0 * epsilon)).t().to_type(float32);       // (B, K)
            return new SketchResult(TensorCopy.ToFloatArray(perExample[0]), TensorCopy.ToFloatArray(table));
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    /// <summary>
    /// The sketch by definition, kept as the reference the fast <see cref="Compute"/> is tested against: sets the
    /// parameter to theta +- eps z_k and reruns the last layer, final norm and lm_head over every position, 2K + 1
    /// times. Restores the parameter's exact bits.
    /// </summary>
    public static SketchResult ComputeReference(CausalDecoder model, TokenBatch batch, long probeSeed, int probes, double epsilon)
    {
        Validate(model, batch, probes, epsilon);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var sketch = model.SketchParameter;
        var saved = sketch.detach().clone();
        bool wasTraining = model.training;
        model.eval();
        try
        {
            // Only the last layer depends on the sketch parameter: run the trunk once.
            var trunk = model.ForwardTrunk(batch.Inputs);                             // (B, T, D)
            var losses = TokenLoss.PerExample(model.ForwardHead(trunk), batch.Targets, batch.Mask); // (B)

            var direction = new float[sketch.numel()];
            var coefficients = new Tensor[probes];
            for (int k = 0; k < probes; k++)
            {
                using var probeScope = NewDisposeScope();
                ProbeDirections.Fill(probeSeed, k, direction);
                using var heldEpsilon = epsilon.ToScalar(); // disposed after the native call (HeldScalars)
                var step = tensor(direction, sketch.shape, float32).to(sketch.dtype, sketch.device).mul_(heldEpsilon);
                sketch.copy_(saved + step);
                var plus = TokenLoss.PerExample(model.ForwardHead(trunk), batch.Targets, batch.Mask);
                sketch.copy_(saved - step);
                var minus = TokenLoss.PerExample(model.ForwardHead(trunk), batch.Targets, batch.Mask);
                coefficients[k] = ((plus.to_type(float64) - minus.to_type(float64)) / (2.0 * epsilon)).MoveToOuterDisposeScope();
            }

            // One device-to-host copy at the end (a sync point on GPU).
            var table = stack(coefficients, 1).to_type(float32).cpu();                // (B, K)
            return new SketchResult(TensorCopy.ToFloatArray(losses), TensorCopy.ToFloatArray(table));
        }
        finally
        {
            // In-place +eps/-eps does not give back the same fp32 bits; copy the saved values back.
            sketch.copy_(saved);
            model.train(wasTraining);
        }
    }

    private static void Validate(CausalDecoder model, TokenBatch batch, int probes, double epsilon)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentOutOfRangeException.ThrowIfLessThan(probes, 1);
        if (!(epsilon > 0)) throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "epsilon must be > 0.");
    }

    /// <summary>z_0 .. z_{K-1} as (K, KvDim, Rank), laid out like the sketch parameter, on its device and dtype.</summary>
    private static Tensor Probes(long probeSeed, int probes, Tensor sketch)
    {
        int size = (int)sketch.numel();
        var values = new float[(long)probes * size];
        for (int k = 0; k < probes; k++) ProbeDirections.Fill(probeSeed, k, values.AsSpan(k * size, size));
        return tensor(values, [probes, sketch.shape[0], sketch.shape[1]], float32).to(sketch.dtype, sketch.device);
    }
}
