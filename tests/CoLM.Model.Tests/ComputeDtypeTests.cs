using CoLM.Model.Phi;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace CoLM.Model.Tests;

/// <summary>Frozen base weights in bfloat16 (CausalDecoder.CastBaseWeights), LoRA A/B and their optimizer state in fp32.</summary>
public sealed class ComputeDtypeTests(ITestOutputHelper output)
{
    private static long Bytes(IEnumerable<Tensor> tensors) => tensors.Sum(t => t.numel() * t.element_size());

    [Fact]
    public void Bfloat16_halves_the_base_weights_and_keeps_LoRA_in_fp32()
    {
        using var model = Tiny.Model();
        long before = Bytes(model.FrozenParameters().Select(p => p.Tensor));
        long lora = Bytes(model.TrainableParameters().Select(p => (Tensor)p.Parameter));
        model.CastBaseWeights(ScalarType.BFloat16);
        long after = Bytes(model.FrozenParameters().Select(p => p.Tensor));
        output.WriteLine($"base weights {before} -> {after} bytes; LoRA {lora} bytes");

        Assert.Equal(before / 2, after);
        Assert.Equal(ScalarType.BFloat16, model.ComputeDtype);
        Assert.All(model.FrozenParameters(), p => Assert.Equal(ScalarType.BFloat16, p.Tensor.dtype));
        Assert.All(model.TrainableParameters(), p => Assert.Equal(ScalarType.Float32, p.Parameter.dtype));
        Assert.Equal(lora, Bytes(model.TrainableParameters().Select(p => (Tensor)p.Parameter)));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Bfloat16_logits_are_within_bfloat16_rounding_of_fp32(bool phi)
    {
        var lora = new LoraSettings(4, 8.0, 0.0, ["q_proj", "v_proj"]);
        using CausalDecoder full = phi ? PhiLoader.Load(PhiFixtures.Dir("tiny"), lora, seed: 1) : Tiny.Model(lora: lora);
        using CausalDecoder half = phi
            ? PhiLoader.Load(PhiFixtures.Dir("tiny"), lora, seed: 1, ScalarType.BFloat16)
            : Tiny.Model(lora: lora);
        if (!phi) half.CastBaseWeights(ScalarType.BFloat16);
        using var batch = Tiny.Batch(80, 16, 11);
        Tiny.Train(full, batch, steps: 1);
        foreach (var ((_, a), (_, b)) in full.TrainableParameters().Zip(half.TrainableParameters()))
            using (no_grad()) b.copy_(a); // the same adapter on both

        full.eval();
        half.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var reference = full.forward(batch.Inputs);
        var rounded = half.forward(batch.Inputs).to_type(ScalarType.Float32);
        double worst = (reference - rounded).abs().max().item<float>(), scale = reference.abs().max().item<float>();
        output.WriteLine($"{(phi ? "phi" : "llama")}: max |logit fp32 - bf16| {worst:G3}, max |logit| {scale:G3}");
        // bfloat16 keeps 8 significant bits (relative rounding 2^-9); a few layers compound it to a few percent.
        Assert.True(worst <= 0.05 * scale + 0.02, $"max |diff| {worst} with max |logit| {scale}");
    }

    [Fact]
    public void A_few_bfloat16_training_steps_lower_the_loss_with_fp32_adapters()
    {
        using var model = Tiny.Model(lora: Tiny.Lora(rank: 4));
        model.CastBaseWeights(ScalarType.BFloat16);
        using var batch = Tiny.Batch(81, 16, 12, 9);
        using var optimizer = optim.AdamW(model.TrainableParameters().Select(p => p.Parameter), 1e-2);
        var losses = new List<float>();
        for (int i = 0; i < 8; i++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = TokenLoss.PerExample(model.forward(batch.Inputs), batch.Targets, batch.Mask).mean();
            loss.backward();
            Assert.All(model.TrainableParameters(), p => Assert.Equal(ScalarType.Float32, p.Parameter.grad!.dtype));
            optimizer.step();
            losses.Add(loss.item<float>());
        }
        output.WriteLine(string.Join(" ", losses.Select(l => l.ToString("F4"))));
        Assert.All(losses, l => Assert.True(float.IsFinite(l)));
        Assert.True(losses[^1] < losses[0] - 0.05, $"loss {losses[0]} -> {losses[^1]}");

        // The sketches run in the compute dtype too.
        var sketch = ZerothOrderSketch.Compute(model, batch, probeSeed: 2, probes: 3, epsilon: 1e-3);
        Assert.All(sketch.Coefficients, c => Assert.True(float.IsFinite(c)));
        Assert.All(ExactSketchGradient.Compute(model, batch), g => Assert.True(float.IsFinite(g)));
    }

    [Fact]
    public void The_bfloat16_sketches_point_where_the_fp32_ones_do()
    {
        using var full = Tiny.Model(lora: Tiny.Lora(rank: 4));
        using var batch = Tiny.Batch(83, 16, 12, 9, 14);
        Tiny.Train(full, batch, steps: 2);
        using var half = Tiny.Model(lora: Tiny.Lora(rank: 4));
        foreach (var ((_, a), (_, b)) in full.TrainableParameters().Zip(half.TrainableParameters()))
            using (no_grad()) b.copy_(a);
        half.CastBaseWeights(ScalarType.BFloat16);

        var zoFull = ZerothOrderSketch.Compute(full, batch, probeSeed: 9, probes: 16, epsilon: 1e-3).Coefficients;
        var zoHalf = ZerothOrderSketch.Compute(half, batch, probeSeed: 9, probes: 16, epsilon: 1e-3).Coefficients;
        var exactFull = ExactSketchGradient.Compute(full, batch);
        var exactHalf = ExactSketchGradient.Compute(half, batch);
        double zo = Tiny.Cosine(zoFull, zoHalf), exact = Tiny.Cosine(exactFull, exactHalf);
        output.WriteLine($"cosine bf16 vs fp32: zeroth-order coefficients {zo:F3}, exact gradients {exact:F3}");
        Assert.True(exact > 0.95, $"exact {exact}");
        Assert.True(zo > 0.5, $"zeroth order {zo}");
    }

    [Fact]
    public void Float16_runs_forward_and_backward_on_the_CPU()
    {
        using var model = Tiny.Model(lora: Tiny.Lora(rank: 4));
        model.CastBaseWeights(ScalarType.Float16);
        using var batch = Tiny.Batch(82, 12, 9);
        using var scope = NewDisposeScope();
        var loss = TokenLoss.PerExample(model.forward(batch.Inputs), batch.Targets, batch.Mask).mean();
        loss.backward();
        Assert.True(float.IsFinite(loss.item<float>()));
    }
}
