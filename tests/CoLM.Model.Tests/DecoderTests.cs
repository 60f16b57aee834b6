using TorchSharp;
using static TorchSharp.torch;

namespace CoLM.Model.Tests;

public sealed class DecoderTests
{
    [Fact]
    public void Forward_gives_logits_per_position_and_trunk_plus_head_is_the_whole_model()
    {
        using var model = Tiny.Model();
        using var batch = Tiny.Batch(1, 13, 9);
        using var scope = NewDisposeScope();

        var logits = model.forward(batch.Inputs);
        var trunk = model.ForwardTrunk(batch.Inputs);

        Assert.Equal(new long[] { 2, 12, 32 }, logits.shape);
        Assert.Equal(new long[] { 2, 12, 32 }, trunk.shape);
        Assert.Equal(Tiny.Values(logits), Tiny.Values(model.ForwardHead(trunk)));
        Assert.True(logits.isfinite().all().item<bool>());
    }

    [Fact]
    public void Attention_is_causal_a_later_token_never_changes_earlier_logits()
    {
        using var model = Tiny.Model();
        using var batch = Tiny.Batch(2, 13);
        Tiny.Train(model, batch, steps: 1); // make the adapters part of the function too
        using var scope = NewDisposeScope();
        var changed = batch.Inputs.clone();
        changed[0, 8] = tensor((changed[0, 8].item<long>() + 5) % 32);

        var before = model.forward(batch.Inputs);
        var after = model.forward(changed);

        Assert.True(before[.., ..8].allclose(after[.., ..8], rtol: 0, atol: 1e-6));
        Assert.False(before[.., 8..].allclose(after[.., 8..], rtol: 0, atol: 1e-4));
    }

    [Fact]
    public void Only_lora_matrices_require_grad_and_are_named_like_hugging_face()
    {
        using var model = Tiny.Model(lora: Tiny.Lora(rank: 3, targets: ["q_proj", "v_proj", "down_proj"]));

        var trainable = model.TrainableParameters();
        var frozen = model.FrozenParameters();

        Assert.Equal(2 * 3 * 2, trainable.Count);
        Assert.All(trainable, p => Assert.True(p.Parameter.requires_grad));
        Assert.All(trainable, p => Assert.Matches(@"^layers\.\d\.(self_attn\.[qv]|mlp\.down)_proj\.lora_[AB]$", p.Name));
        Assert.All(frozen, p => Assert.False(p.Tensor.requires_grad));
        var frozenNames = frozen.Select(p => p.Name).ToList();
        Assert.Contains("embed_tokens.weight", frozenNames);
        Assert.Contains("layers.1.self_attn.v_proj.weight", frozenNames);
        Assert.Contains("layers.0.post_attention_layernorm.weight", frozenNames);
        Assert.Contains("norm.weight", frozenNames);
        Assert.Contains("lm_head.weight", frozenNames);
        Assert.Equal(3 + 2 * 9, frozen.Count); // embedding, final norm, lm_head; per layer 2 norms + 7 projections

        var sketch = model.SketchParameter;
        Assert.Equal(new long[] { 32, 3 }, sketch.shape);
        Assert.Same(sketch, trainable.Single(p => p.Name == "layers.1.self_attn.v_proj.lora_B").Parameter);
        Assert.Equal(new long[] { 3, 32 }, trainable.Single(p => p.Name == "layers.1.self_attn.v_proj.lora_A").Parameter.shape);
    }

    [Fact]
    public void Optimizer_steps_change_only_lora_tensors_and_leave_frozen_weights_bit_identical()
    {
        using var model = Tiny.Model(lora: Tiny.Lora(dropout: 0.1));
        using var batch = Tiny.Batch(3, 13, 10, 7);
        var frozenBefore = model.FrozenParameters().Select(p => (p.Name, Values: Tiny.Values(p.Tensor))).ToList();
        var trainableBefore = model.TrainableParameters().Select(p => Tiny.Values(p.Parameter)).ToList();

        model.train();
        Tiny.Train(model, batch, steps: 3);

        foreach (var ((name, tensor), before) in model.FrozenParameters().Zip(frozenBefore))
        {
            Assert.Equal(before.Name, name);
            Assert.Equal(before.Values, Tiny.Values(tensor));
            Assert.Null(tensor.grad);
        }
        foreach (var ((name, parameter), before) in model.TrainableParameters().Zip(trainableBefore))
            Assert.False(before.SequenceEqual(Tiny.Values(parameter)), $"{name} did not change");
    }

    [Fact]
    public void The_same_seed_gives_bit_identical_weights_and_outputs()
    {
        using var a = Tiny.Model(seed: 11);
        using var b = Tiny.Model(seed: 11);
        using var c = Tiny.Model(seed: 12);
        using var batch = Tiny.Batch(4, 12);
        using var scope = NewDisposeScope();

        var pa = a.named_parameters().ToList();
        var pb = b.named_parameters().ToList();
        Assert.Equal(pa.Select(p => p.name), pb.Select(p => p.name));
        foreach (var (x, y) in pa.Zip(pb)) Assert.Equal(Tiny.Values(x.parameter), Tiny.Values(y.parameter));
        Assert.Equal(Tiny.Values(a.forward(batch.Inputs)), Tiny.Values(b.forward(batch.Inputs)));
        Assert.NotEqual(Tiny.Values(a.FrozenParameters()[0].Tensor), Tiny.Values(c.FrozenParameters()[0].Tensor));
    }

    [Fact]
    public void Base_weights_do_not_depend_on_the_lora_targets()
    {
        using var all = Tiny.Model(seed: 5);
        using var some = Tiny.Model(seed: 5, lora: Tiny.Lora(rank: 2, targets: ["v_proj"]));

        var mine = some.FrozenParameters().ToDictionary(p => p.Name, p => p.Tensor);
        Assert.All(all.FrozenParameters(), p => Assert.Equal(Tiny.Values(p.Tensor), Tiny.Values(mine[p.Name])));
    }

    [Fact]
    public void Known_first_values_pin_the_initialisation_across_processes_and_versions()
    {
        // If this fails, a seed no longer reproduces earlier runs' weights (a changed init or libtorch RNG).
        using var model = Tiny.Model(seed: 42);
        var embed = Tiny.Values(model.FrozenParameters()[0].Tensor);
        var loraA = Tiny.Values(model.TrainableParameters()[0].Parameter);
        Assert.Equal(ExpectedEmbed, embed.Take(3).ToArray());
        Assert.Equal(ExpectedLoraA, loraA.Take(3).ToArray());
    }

    private static readonly float[] ExpectedEmbed = [0.00177509943f, -0.00971033145f, 0.0113616427f];
    private static readonly float[] ExpectedLoraA = [0.0391655266f, -0.00862649083f, 0.0212173909f];

    [Fact]
    public void An_unknown_lora_target_is_refused_by_name()
    {
        var error = Assert.Throws<ArgumentException>(() => Tiny.Model(lora: Tiny.Lora(targets: ["q_proj", "fc1"])));
        Assert.Contains("fc1", error.Message);
    }

    [Fact]
    public void The_sketch_needs_an_adapter_on_v_proj()
    {
        using var model = Tiny.Model(lora: Tiny.Lora(targets: ["q_proj"]));
        var error = Assert.Throws<InvalidOperationException>(() => model.SketchParameter);
        Assert.Contains("v_proj", error.Message);
    }

    [Fact]
    public void Moving_the_model_to_another_dtype_moves_every_weight_and_the_sketch_parameter()
    {
        using var model = Tiny.Model();
        using var batch = Tiny.Batch(6, 10);
        model.to(float64);
        using var scope = NewDisposeScope();

        Assert.All(model.parameters(), p => Assert.Equal(float64, p.dtype));
        Assert.Equal(float64, model.SketchParameter.dtype);
        Assert.Same(model.SketchParameter, model.TrainableParameters().Single(p => p.Name == "layers.1.self_attn.v_proj.lora_B").Parameter);
        Assert.True(model.SketchParameter.requires_grad);
        Assert.Equal(float64, model.forward(batch.Inputs).dtype);
    }

    [Fact]
    public void A_sequence_longer_than_max_seq_len_is_refused()
    {
        using var model = Tiny.Model();
        using var tokens = zeros([1, 17], int64);
        Assert.Throws<ArgumentException>(() => model.forward(tokens).Dispose());
    }
}
