using CoLM.Selection;
using TorchSharp;
using static TorchSharp.torch;

namespace CoLM.Model.Tests;

public sealed class SketchTests
{
    [Fact]
    public void The_sketch_restores_the_parameter_bit_for_bit_and_the_train_mode()
    {
        using var model = Tiny.Model(lora: Tiny.Lora(dropout: 0.1));
        using var batch = Tiny.Batch(20, 12, 8);
        Tiny.Train(model, batch, steps: 1);
        var before = Tiny.Values(model.SketchParameter);
        model.train();

        var result = ZerothOrderSketch.Compute(model, batch, probeSeed: 99, probes: 8, epsilon: 1e-3);

        Assert.Equal(before, Tiny.Values(model.SketchParameter));
        Assert.True(model.training);
        Assert.Equal(2, result.Losses.Length);
        Assert.Equal(2 * 8, result.Coefficients.Length);
        model.eval();
        using var scope = NewDisposeScope();
        var expected = TokenLoss.PerExample(model.forward(batch.Inputs), batch.Targets, batch.Mask).data<float>().ToArray();
        // The fast sketch sums in another order than a forward pass: equal to fp32 rounding, not bit for bit.
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], result.Losses[i], 1e-5 * Math.Abs(expected[i]));
    }

    [Fact]
    public void The_same_probe_seed_gives_identical_coefficients()
    {
        using var model = Tiny.Model();
        using var batch = Tiny.Batch(21, 12, 10);
        Tiny.Train(model, batch, steps: 1);

        var a = ZerothOrderSketch.Compute(model, batch, probeSeed: 5, probes: 4, epsilon: 1e-3);
        var b = ZerothOrderSketch.Compute(model, batch, probeSeed: 5, probes: 4, epsilon: 1e-3);
        var c = ZerothOrderSketch.Compute(model, batch, probeSeed: 6, probes: 4, epsilon: 1e-3);

        Assert.Equal(a.Coefficients, b.Coefficients);
        Assert.NotEqual(a.Coefficients, c.Coefficients);
    }

    [Fact]
    public void The_exact_per_example_gradient_equals_autograd_on_each_example_alone()
    {
        using var model = Tiny.Model(lora: Tiny.Lora(rank: 3, dropout: 0.1));
        var rows = Tiny.Rows(30, 13, 7, 10);
        using var batch = Collate.Build(rows, padId: 0, CPU);
        Tiny.Train(model, batch, steps: 2);
        model.train(); // the exact gradient runs in eval mode regardless, and gives the mode back
        var gradBefore = Tiny.Values(model.SketchParameter.grad!);

        var exact = ExactSketchGradient.Compute(model, batch);

        Assert.True(model.training);
        Assert.Equal(gradBefore, Tiny.Values(model.SketchParameter.grad!)); // autograd.grad leaves .grad alone
        int p = (int)model.SketchParameter.numel();
        Assert.Equal(rows.Count * p, exact.Length);
        model.eval();
        for (int i = 0; i < rows.Count; i++)
        {
            using var alone = Collate.Build([rows[i]], padId: 0, CPU);
            using var scope = NewDisposeScope();
            var loss = TokenLoss.PerExample(model.forward(alone.Inputs), alone.Targets, alone.Mask).sum();
            var reference = Tiny.Values(autograd.grad([loss], [model.SketchParameter])[0]);
            var mine = exact.AsSpan(i * p, p).ToArray();
            double scale = reference.Max(v => Math.Abs(v));
            Assert.True(scale > 1e-4, "the gradient should not be trivially zero");
            for (int j = 0; j < p; j++) Assert.Equal(reference[j], mine[j], 1e-5 * scale);
        }
    }

    [Fact]
    public void Each_coefficient_is_the_directional_derivative_along_its_probe()
    {
        using var model = Tiny.Model(lora: Tiny.Lora(rank: 2));
        using var batch = Tiny.Batch(40, 12, 9, 11);
        Tiny.Train(model, batch, steps: 1);
        int p = (int)model.SketchParameter.numel();
        const int probes = 6;

        var exact = ExactSketchGradient.Compute(model, batch);
        var sketch = ZerothOrderSketch.Compute(model, batch, probeSeed: 17, probes, epsilon: 1e-3);

        var z = new float[p];
        for (int k = 0; k < probes; k++)
        {
            ProbeDirections.Fill(17, k, z);
            for (int i = 0; i < batch.Size; i++)
            {
                double directional = 0;
                for (int j = 0; j < p; j++) directional += (double)exact[i * p + j] * z[j];
                // Central differences in fp32 at eps = 1e-3: loss rounding (~2e-7) / 2e-3 ~ 1e-4 of noise.
                Assert.Equal(directional, sketch.Coefficients[i * probes + k], 2e-3 + 1e-2 * Math.Abs(directional));
            }
        }
    }

    [Fact]
    public void The_sketch_reconstruction_approaches_the_exact_gradient_as_probes_grow()
    {
        // P = Dim * rank = 32 * 2 = 64. g_hat = (1/K) sum_k c_k z_k is a random projection of g, so its cosine
        // with g grows like sqrt(K / (K + P)): about 0.12, 0.45, 0.9 for K = 1, 16, 256.
        // Measured here (4 examples x 3 probe seeds): mean cosine 0.07, 0.42, 0.90.
        using var model = Tiny.Model(lora: Tiny.Lora(rank: 2));
        using var batch = Tiny.Batch(50, 13, 12, 10, 8);
        Tiny.Train(model, batch, steps: 1); // B = 0 at init; one step makes the feature generic
        int p = (int)model.SketchParameter.numel();
        var exact = ExactSketchGradient.Compute(model, batch);
        int[] probeCounts = [1, 16, 256];
        long[] probeSeeds = [101, 202, 303];
        var meanCosine = new double[probeCounts.Length];

        var z = new float[p];
        foreach (long seed in probeSeeds)
        {
            // z_k depends only on (seed, k), so the first K probes of one K = 256 sketch are the K-probe sketch.
            var sketch = ZerothOrderSketch.Compute(model, batch, seed, probeCounts[^1], epsilon: 1e-3);
            for (int i = 0; i < batch.Size; i++)
            {
                var estimate = new double[p];
                for (int k = 0, level = 0; k < probeCounts[^1]; k++)
                {
                    ProbeDirections.Fill(seed, k, z);
                    double c = sketch.Coefficients[i * probeCounts[^1] + k];
                    for (int j = 0; j < p; j++) estimate[j] += c * z[j];
                    if (k + 1 == probeCounts[level])
                    {
                        var g = estimate.Select(v => (float)(v / (k + 1))).ToArray();
                        meanCosine[level++] += Tiny.Cosine(g, exact.AsSpan(i * p, p)) / (batch.Size * probeSeeds.Length);
                    }
                }
            }
        }

        Assert.True(meanCosine[0] < meanCosine[1] && meanCosine[1] < meanCosine[2], string.Join(", ", meanCosine));
        Assert.True(meanCosine[1] > 0.3, string.Join(", ", meanCosine));
        Assert.True(meanCosine[2] > 0.8, string.Join(", ", meanCosine));
    }
}
