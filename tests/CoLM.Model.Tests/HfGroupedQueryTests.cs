using static TorchSharp.torch;

namespace CoLM.Model.Tests;

/// <summary>The decoder options Hugging Face models need: grouped-query attention and tied embeddings.</summary>
public sealed class HfGroupedQueryTests
{
    private static readonly DecoderConfig Gqa = Tiny.Config with { KvHeads = 2 };

    [Fact]
    public void KvHeads_defaults_to_heads_and_explicit_equal_heads_changes_nothing()
    {
        Assert.Equal(Tiny.Config.Heads, Tiny.Config.KvHeads);
        Assert.False(Tiny.Config.TieEmbeddings);
        using var plain = Tiny.Model();
        using var explicitHeads = new LlamaDecoder(Tiny.Config with { KvHeads = Tiny.Config.Heads }, Tiny.Lora(), 7);
        using var batch = Tiny.Batch(3, 9, 9);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        Assert.Equal(Tiny.Values(plain.forward(batch.Inputs)), Tiny.Values(explicitHeads.forward(batch.Inputs)));
    }

    [Fact]
    public void Grouped_query_projections_have_kv_width_and_bad_groupings_are_refused()
    {
        using var model = new LlamaDecoder(Gqa, Tiny.Lora(rank: 2), 7);
        var shapes = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        Assert.Equal([16L, 32L], shapes["layers.0.self_attn.k_proj.weight"]);
        Assert.Equal([16L, 32L], shapes["layers.0.self_attn.v_proj.weight"]);
        Assert.Equal([32L, 32L], shapes["layers.0.self_attn.q_proj.weight"]);
        Assert.Equal([16L, 2L], model.SketchParameter.shape);
        Assert.Throws<ArgumentException>(() => new LlamaDecoder(Tiny.Config with { KvHeads = 3 }, Tiny.Lora(), 7));
    }

    [Fact]
    public void Tied_embeddings_start_lm_head_as_a_copy_of_the_embedding()
    {
        using var model = new LlamaDecoder(Tiny.Config with { TieEmbeddings = true }, Tiny.Lora(), 7);
        var frozen = model.FrozenParameters().ToDictionary(p => p.Name, p => p.Tensor);
        Assert.Equal(Tiny.Values(frozen["embed_tokens.weight"]), Tiny.Values(frozen["lm_head.weight"]));
    }

    [Fact]
    public void With_grouped_query_attention_each_sketch_coefficient_is_the_directional_derivative_along_its_probe()
    {
        using var model = new LlamaDecoder(Gqa, Tiny.Lora(rank: 2), 7);
        using var batch = Tiny.Batch(40, 12, 9, 11);
        Tiny.Train(model, batch, steps: 1);
        int p = (int)model.SketchParameter.numel();
        const int probes = 6;

        var exact = ExactSketchGradient.Compute(model, batch);
        var sketch = ZerothOrderSketch.Compute(model, batch, probeSeed: 17, probes, epsilon: 1e-3);

        var z = new float[p];
        for (int k = 0; k < probes; k++)
        {
            CoLM.Selection.ProbeDirections.Fill(17, k, z);
            for (int i = 0; i < batch.Size; i++)
            {
                double directional = 0;
                for (int j = 0; j < p; j++) directional += (double)exact[i * p + j] * z[j];
                Assert.Equal(directional, sketch.Coefficients[i * probes + k], 2e-3 + 1e-2 * Math.Abs(directional));
            }
        }
    }
}
