using static TorchSharp.torch;

namespace CoLM.Model.Tests;

/// <summary>
/// The exact per-example sketch gradient against the definition of a derivative: central finite
/// differences of one example's loss, one coordinate of the sketch parameter at a time. This checks
/// the batched trick of <see cref="ExactSketchGradient"/> (per-example outer products, the LoRA scale)
/// without trusting autograd's bookkeeping for it.
/// </summary>
/// <remarks>
/// In fp32, as the model trains. Converting the model to float64 does not make the check much
/// tighter: RmsNorm computes in float32 whatever the weights' dtype, so the loss keeps fp32 rounding
/// (~1e-7). Measured on this model (120 coordinates each), worst |fd - exact| / max|g|: fp32 at
/// h = 1e-2: 9.4e-5 (3e-2: 4.8e-4, 3e-3: 3.3e-4, 1e-3: 7.1e-4, 1e-4: 1.0e-2: truncation above,
/// rounding / h below); float64 at its best step h = 3e-3: 4.8e-5. Hence h = 1e-2 and a tolerance of
/// 1e-3 of the example's largest gradient coordinate, ten times the worst seen. A wrong LoRA scale or
/// rows mixed between examples would be off by tens of percent.
/// </remarks>
public sealed class ExactGradientFiniteDifferenceTests
{
    private const double Step = 1e-2, Tolerance = 1e-3;

    [Fact]
    public void The_exact_gradient_matches_central_finite_differences_of_each_examples_loss()
    {
        using var model = Tiny.Model(lora: Tiny.Lora(rank: 3));
        using var trainBatch = Tiny.Batch(60, 13, 9, 11);
        Tiny.Train(model, trainBatch, steps: 3); // LoRA B starts at zero; train so the check is not a special case
        model.eval();
        using var batch = Tiny.Batch(61, 12, 10, 7);

        float[] exact = ExactSketchGradient.Compute(model, batch);

        int p = (int)model.SketchParameter.numel();
        using var saved = model.SketchParameter.detach().clone();
        var random = new Random(3);
        for (int i = 0; i < batch.Size; i++)
        {
            float[] row = exact.AsSpan(i * p, p).ToArray();
            double scale = row.Max(v => Math.Abs(v));
            Assert.True(scale > 1e-4, $"example {i}'s gradient should not be trivially zero");
            // The largest coordinate, then random ones (mostly small: they test the absolute error).
            int largest = Array.FindIndex(row, v => Math.Abs(v) == scale);
            foreach (int j in new[] { largest }.Concat(Enumerable.Range(0, 7).Select(_ => random.Next(p))))
            {
                double plus = ShiftedLoss(model, batch, saved, j, +Step, i);
                double minus = ShiftedLoss(model, batch, saved, j, -Step, i);
                Assert.Equal((plus - minus) / (2 * Step), row[j], Tolerance * scale);
            }
        }

        Assert.Equal(Tiny.Values(saved), Tiny.Values(model.SketchParameter));
    }

    /// <summary>
    /// Example <paramref name="example"/>'s loss with flat coordinate <paramref name="j"/> of the sketch
    /// parameter moved by <paramref name="step"/>; the parameter is then restored bit for bit from
    /// <paramref name="saved"/> (adding and subtracting the step would not give back the same fp32 bits).
    /// </summary>
    private static double ShiftedLoss(LlamaDecoder model, TokenBatch batch, Tensor saved, int j, double step, int example)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var sketch = model.SketchParameter;
        sketch.view(-1)[j].add_(step);
        try
        {
            return TokenLoss.PerExample(model.forward(batch.Inputs), batch.Targets, batch.Mask)[example].item<float>();
        }
        finally
        {
            sketch.copy_(saved);
        }
    }
}
