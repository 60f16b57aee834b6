using CoLM.Selection;
using static TorchSharp.torch;

namespace CoLM.Model;

/// <summary>Per-example losses (B) and sketch coefficients c_ik, row-major [B x K].</summary>
public sealed record SketchResult(float[] Losses, float[] Coefficients);

/// <summary>
/// The zeroth-order (SPSA / MeZO) gradient sketch of COLM.md step 4, on <see cref="LlamaDecoder.SketchParameter"/>:
/// c_ik = (loss_i(theta + eps z_k) - loss_i(theta - eps z_k)) / (2 eps), with z_k from
/// <see cref="ProbeDirections"/> so that anyone holding the probe seed rebuilds g_i = (1/K) sum_k c_ik z_k.
/// </summary>
public static class ZerothOrderSketch
{
    public static SketchResult Compute(LlamaDecoder model, TokenBatch batch, long probeSeed, int probes, double epsilon)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentOutOfRangeException.ThrowIfLessThan(probes, 1);
        if (!(epsilon > 0)) throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "epsilon must be > 0.");

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var sketch = model.SketchParameter;
        var saved = sketch.detach().clone();
        bool wasTraining = model.training;
        model.eval(); // no dropout: both sides of a difference must see the same function
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
                var step = tensor(direction, sketch.shape, float32).to(sketch.dtype, sketch.device).mul_(epsilon);
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
}
