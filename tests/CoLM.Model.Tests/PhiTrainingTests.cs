using CoLM.Model.Generation;
using CoLM.Model.Peft;
using CoLM.Model.Phi;
using CoLM.Model.SafeTensors;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace CoLM.Model.Tests;

/// <summary>
/// Phi-2 (tests/fixtures/phi) through the decoder contract CoLM trains with: the fast zeroth-order sketch against its
/// by-definition reference, the exact sketch gradient against autograd, KV-cache generation against full forwards,
/// and PEFT export with Phi's module names.
/// </summary>
public sealed class PhiTrainingTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("colm-phi-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static PhiDecoder Trained(string fixture, params string[] targets)
    {
        var lora = new LoraSettings(Rank: 4, Alpha: 8.0, Dropout: 0.1, targets.Length == 0 ? PhiDecoder.KnownLoraTargets : targets);
        var model = PhiLoader.Load(PhiFixtures.Dir(fixture), lora, seed: 3);
        using var batch = Tiny.Batch(70, 20, 9, 14);
        Tiny.Train(model, batch, steps: 2); // LoRA B starts at zero; two steps make every B nonzero
        return model;
    }

    [Theory]
    [InlineData("tiny", 4)]      // Phi-2's layout: partial rotary, no grouped-query attention
    [InlineData("tiny_gqa", 4)]  // 4 query heads over 2 key/value heads
    [InlineData("tiny", 1)]
    public void The_fast_sketch_of_Phi_matches_its_reference(string fixture, int probes)
    {
        using var model = Trained(fixture);
        Assert.Contains(Tiny.Values(model.SketchParameter), v => v != 0);
        using var batch = Tiny.Batch(71, 30, 13, 7, 22);

        var reference = ZerothOrderSketch.ComputeReference(model, batch, probeSeed: 5, probes, epsilon: 1e-3);
        var fast = ZerothOrderSketch.Compute(model, batch, probeSeed: 5, probes, epsilon: 1e-3);

        for (int i = 0; i < batch.Size; i++)
            Assert.True(Math.Abs(reference.Losses[i] - fast.Losses[i]) <= 1e-5 * reference.Losses[i], $"loss {i}");
        double scale = reference.Coefficients.Max(v => Math.Abs(v));
        double maxDiff = reference.Coefficients.Zip(fast.Coefficients, (r, f) => Math.Abs(r - f)).Max();
        output.WriteLine($"{fixture}, K={probes}: max |c| {scale:G3}, max |c_fast - c_ref| {maxDiff:G3}");
        Assert.True(scale > 0);
        Assert.True(maxDiff <= 1e-2 * scale + 1e-4, $"max |diff| {maxDiff} with max |c| {scale}");
    }

    [Fact]
    public void The_exact_sketch_gradient_of_Phi_sums_to_the_autograd_gradient()
    {
        using var model = Trained("tiny_gqa");
        using var batch = Tiny.Batch(72, 25, 11, 16);
        var perExample = ExactSketchGradient.Compute(model, batch);   // (B x P)

        model.eval();
        var sketch = model.SketchParameter;
        sketch.grad?.zero_();
        using (var scope = NewDisposeScope())
            TokenLoss.PerExample(model.forward(batch.Inputs), batch.Targets, batch.Mask).sum().backward();
        var expected = Tiny.Values(sketch.grad!);
        var summed = new float[expected.Length];
        for (int i = 0; i < batch.Size; i++)
            for (int j = 0; j < expected.Length; j++) summed[j] += perExample[i * expected.Length + j];
        double worst = expected.Zip(summed, (e, s) => Math.Abs(e - s)).Max(), scale = expected.Max(Math.Abs);
        output.WriteLine($"max |sum of per-example - autograd| {worst:G3}, max |grad| {scale:G3}");
        Assert.True(worst <= 1e-4 * scale + 1e-7);
    }

    [Fact]
    public void Greedy_generation_with_the_KV_cache_equals_full_forwards()
    {
        using var model = Trained("tiny");
        int[][] prompts = [[1, 5, 9, 2], [1, 33, 7]];
        var cached = GreedyGenerator.Generate(model, prompts, maxNewTokens: 6, eosId: 39, padId: 0);

        model.eval();
        using var noGrad = no_grad();
        for (int b = 0; b < prompts.Length; b++)
        {
            var sequence = prompts[b].Select(t => (long)t).ToList();
            var naive = new List<int>();
            for (int step = 0; step < 6; step++)
            {
                using var scope = NewDisposeScope();
                var logits = model.forward(tensor(sequence.ToArray(), [1, sequence.Count]));
                int next = (int)logits[0, sequence.Count - 1].argmax().item<long>();
                if (next == 39) break;
                naive.Add(next);
                sequence.Add(next);
            }
            Assert.Equal(naive, cached.Tokens[b]);
        }
    }

    [Fact]
    public void A_Phi_adapter_exports_with_PEFT_names_and_imports_back()
    {
        using var model = Trained("tiny", "q_proj", "v_proj", "dense", "fc1");
        PeftAdapter.Export(model, _dir, "phi-base");
        using (var file = SafeTensorsFile.Open(Path.Combine(_dir, PeftAdapter.WeightsFile)))
        {
            var names = file.Tensors.Select(t => t.Name).ToHashSet();
            Assert.Contains("base_model.model.model.layers.1.self_attn.dense.lora_B.weight", names);
            Assert.Contains("base_model.model.model.layers.0.mlp.fc1.lora_A.weight", names);
            Assert.Contains("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight", names);
            Assert.Equal(2 * 4 * 2, names.Count); // layers x targets x (A, B)
        }

        var lora = model.Lora;
        using var fresh = PhiLoader.Load(PhiFixtures.Dir("tiny"), lora, seed: 99);
        PeftAdapter.Import(fresh, _dir);
        foreach (var ((name, mine), (_, theirs)) in model.TrainableParameters().Zip(fresh.TrainableParameters()))
            Assert.True(Tiny.Values(mine).SequenceEqual(Tiny.Values(theirs)), name);
    }
}
