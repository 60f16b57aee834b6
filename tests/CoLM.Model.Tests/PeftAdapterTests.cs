using CoLM.Model;
using CoLM.Model.Peft;
using CoLM.Model.SafeTensors;
using static TorchSharp.torch;

namespace CoLM.Model.Tests;

public sealed class PeftAdapterTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("colm-peft-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly DecoderConfig Config = new(VocabSize: 32, Dim: 32, Layers: 2, Heads: 4, HiddenDim: 64, MaxSeqLen: 16);

    private static LlamaDecoder Model(int rank = 4) =>
        new(Config, new LoraSettings(rank, 8, 0.0, ["q_proj", "v_proj", "down_proj"]), seed: 3);

    private static void Perturb(LlamaDecoder model)
    {
        using var _ = no_grad();
        long i = 1;
        foreach (var (_, p) in model.TrainableParameters()) p.add_(randn(p.shape, generator: new Generator((ulong)i++)));
    }

    [Fact]
    public void An_exported_adapter_has_PEFT_key_names_shapes_and_config()
    {
        using var model = Model();
        Perturb(model);
        PeftAdapter.Export(model, _dir, "my-base");

        using var file = SafeTensorsFile.Open(Path.Combine(_dir, PeftAdapter.WeightsFile));
        var names = file.Tensors.Select(t => t.Name).ToHashSet();
        Assert.Contains("base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight", names);
        Assert.Contains("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight", names);
        Assert.Equal(2 * 3 * 2, names.Count); // layers x targets x (A, B)
        Assert.Equal([4L, 32L], file.Tensors.Single(t => t.Name == "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").Shape);
        Assert.Equal([32L, 4L], file.Tensors.Single(t => t.Name == "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight").Shape);
        Assert.Equal([32L, 4L], file.Tensors.Single(t => t.Name == "base_model.model.model.layers.0.mlp.down_proj.lora_B.weight").Shape);
        var config = File.ReadAllText(Path.Combine(_dir, PeftAdapter.ConfigFile));
        Assert.Contains("\"peft_type\": \"LORA\"", config);
        Assert.Contains("\"r\": 4", config);
        Assert.Contains("\"base_model_name_or_path\": \"my-base\"", config);
    }

    [Fact]
    public void Importing_an_adapter_restores_every_LoRA_tensor_exactly()
    {
        using var source = Model();
        Perturb(source);
        PeftAdapter.Export(source, _dir);
        using var target = Model();

        PeftAdapter.Import(target, _dir);

        foreach (var ((_, a), (_, b)) in source.TrainableParameters().Zip(target.TrainableParameters()))
            Assert.True(a.bytes.SequenceEqual(b.bytes));
    }

    [Fact]
    public void An_adapter_of_another_rank_is_refused_by_name_and_leaves_the_model_unchanged()
    {
        using var source = Model(rank: 4);
        PeftAdapter.Export(source, _dir);
        using var target = Model(rank: 8);
        var before = target.TrainableParameters().Select(p => p.Parameter.bytes.ToArray()).ToArray();

        var e = Assert.Throws<PeftAdapterException>(() => PeftAdapter.Import(target, _dir));

        Assert.Contains("r = 4", e.Message);
        Assert.Contains(PeftAdapter.ConfigFile, e.Message);
        Assert.Equal(before, target.TrainableParameters().Select(p => p.Parameter.bytes.ToArray()).ToArray());
    }
}
