using System.Text.Json.Nodes;
using CoLM.Model.Phi;
using CoLM.Model.SafeTensors;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace CoLM.Model.Tests;

/// <summary>PhiSaver: a Phi model with merged LoRA weights saved as a PhiForCausalLM folder loads back into the same function.</summary>
public sealed class PhiSaverTests(ITestOutputHelper output)
{
    private static readonly LoraSettings Adapted = new(Rank: 2, Alpha: 4, Dropout: 0, Targets: ["q_proj", "v_proj", "dense", "fc1", "fc2"]);

    /// <summary>No adapter: no LoRA targets, so the loaded model is exactly the stored weights.</summary>
    private static readonly LoraSettings None = new(Rank: 1, Alpha: 1, Dropout: 0, Targets: []);

    /// <summary>tests/fixtures/phi/tiny with every LoRA B random and nonzero, so the merge changes every adapted weight.</summary>
    private static PhiDecoder AdaptedModel()
    {
        var model = PhiLoader.Load(PhiFixtures.Dir("tiny"), Adapted, seed: 7);
        using (var noGrad = no_grad())
        using (var generator = new TorchSharp.torch.Generator(3))
        {
            foreach (var (name, parameter) in model.TrainableParameters().Where(p => p.Name.EndsWith(".lora_B", StringComparison.Ordinal)))
            {
                using var values = randn(parameter.shape, float32, CPU, generator: generator);
                using var scaled = values.mul(0.2);
                parameter.copy_(scaled);
            }
        }
        model.eval();
        return model;
    }

    private static double MaxDiff(CausalDecoder a, CausalDecoder b)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var tokens = tensor(new long[] { 3, 17, 5, 39, 11, 2, 30, 30, 0, 21, 8, 14, 1, 33, 9, 26 }, [2, 8]);
        var la = a.forward(tokens).to_type(float32);
        var lb = b.forward(tokens).to_type(float32);
        return la.sub(lb).abs().max().item<float>();
    }

    [Fact]
    public void MergedFp32FolderReproducesTheAdaptedModel()
    {
        using var model = AdaptedModel();
        using var temp = new TempDir();
        string dir = Path.Combine(temp.Path, "merged");

        PhiSaver.SaveMerged(model, dir);

        Assert.Equal(["config.json", "model.safetensors"], Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName).Order());
        Assert.Equal([dir], Directory.EnumerateFileSystemEntries(temp.Path));
        Assert.Equal(model.Config, PhiLoader.ReadConfig(dir));
        using (var file = SafeTensorsFile.Open(Path.Combine(dir, "model.safetensors")))
        {
            var expected = PhiLoader.ExpectedTensors(model.Config);
            Assert.Equal(expected.Select(t => t.Name).Order(StringComparer.Ordinal), file.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
            foreach (var (name, shape) in expected) Assert.Equal(shape, file.Tensors.Single(t => t.Name == name).Shape);
            Assert.All(file.Tensors, t => Assert.Equal(SafeTensorDType.F32, t.DType));
        }

        using var loaded = PhiLoader.Load(dir, None);
        loaded.eval();
        Assert.Empty(loaded.TrainableParameters());
        double diff = MaxDiff(model, loaded);
        output.WriteLine($"phi fp32: max |logit difference| = {diff:E2}");
        Assert.True(diff < 1e-5, $"max abs logit difference {diff}");

        // The merge mattered: the fixture's weights alone give other logits.
        using var baseOnly = PhiLoader.Load(PhiFixtures.Dir("tiny"), None);
        baseOnly.eval();
        double baseDiff = MaxDiff(model, baseOnly);
        output.WriteLine($"phi fp32: adapted vs base-only model: {baseDiff:E2}");
        Assert.True(baseDiff > 1e-2, $"the random LoRA B barely changed the logits ({baseDiff})");
    }

    [Theory]
    [InlineData(ScalarType.Float16, "float16", SafeTensorDType.F16, 5e-3)]
    [InlineData(ScalarType.BFloat16, "bfloat16", SafeTensorDType.BF16, 5e-2)]
    public void HalfPrecisionStorageLoadsCloseToTheAdaptedModel(ScalarType storeAs, string torchDType, SafeTensorDType fileDType, double tolerance)
    {
        using var model = AdaptedModel();
        using var temp = new TempDir();
        string dir = Path.Combine(temp.Path, "merged");

        PhiSaver.SaveMerged(model, dir, storeAs);

        Assert.Equal(torchDType, JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!["torch_dtype"]!.GetValue<string>());
        using (var file = SafeTensorsFile.Open(Path.Combine(dir, "model.safetensors")))
            Assert.All(file.Tensors, t => Assert.Equal(fileDType, t.DType));
        using var loaded = PhiLoader.Load(dir, None);
        loaded.eval();
        double diff = MaxDiff(model, loaded);
        output.WriteLine($"phi {storeAs} storage, fp32 compute: max |logit difference| = {diff:E2}");
        Assert.True(diff < tolerance, $"max abs logit difference {diff}");
    }

    [Fact]
    public void ConfigRoundTripsTheArchitectureAndKeepsTheBaseFoldersOtherFields()
    {
        using var model = AdaptedModel();
        using var temp = new TempDir();
        string source = Path.Combine(temp.Path, "source");
        Directory.CreateDirectory(source);
        var original = JsonNode.Parse(File.ReadAllText(Path.Combine(PhiFixtures.Dir("tiny"), "config.json")))!.AsObject();
        original["bos_token_id"] = 7;
        original["resid_pdrop"] = 0.1;
        File.WriteAllText(Path.Combine(source, "config.json"), original.ToJsonString());
        string dir = Path.Combine(temp.Path, "merged");

        PhiSaver.SaveMerged(model, dir, ScalarType.BFloat16, baseModelDir: source);

        var saved = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!.AsObject();
        Assert.Equal(["PhiForCausalLM"], saved["architectures"]!.AsArray().Select(a => a!.GetValue<string>()));
        Assert.Equal("phi", saved["model_type"]!.GetValue<string>());
        Assert.Equal("gelu_new", saved["hidden_act"]!.GetValue<string>());
        Assert.False(saved["tie_word_embeddings"]!.GetValue<bool>());
        Assert.False(saved["qk_layernorm"]!.GetValue<bool>());
        Assert.Equal(7, saved["bos_token_id"]!.GetValue<int>());
        Assert.Equal(0.1, saved["resid_pdrop"]!.GetValue<double>());
        Assert.Equal("bfloat16", saved["torch_dtype"]!.GetValue<string>());
        foreach (var field in new[] { "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size", "max_position_embeddings" })
            Assert.Equal(original[field]!.GetValue<int>(), saved[field]!.GetValue<int>());
        foreach (var field in new[] { "partial_rotary_factor", "rope_theta", "layer_norm_eps" })
            Assert.Equal(original[field]!.GetValue<double>(), saved[field]!.GetValue<double>());
        Assert.Equal(model.Config, PhiLoader.ReadConfig(dir));
    }

    [Fact]
    public void GroupedQueryFixtureRoundTrips()
    {
        var lora = new LoraSettings(Rank: 2, Alpha: 4, Dropout: 0, Targets: PhiDecoder.KnownLoraTargets);
        using var model = PhiLoader.Load(PhiFixtures.Dir("tiny_gqa"), lora, seed: 2);
        using (var noGrad = no_grad())
        {
            foreach (var (_, parameter) in model.TrainableParameters().Where(p => p.Name.EndsWith(".lora_B", StringComparison.Ordinal)))
                parameter.fill_(0.05);
        }
        model.eval();
        using var temp = new TempDir();
        string dir = Path.Combine(temp.Path, "merged");

        PhiSaver.SaveMerged(model, dir);

        Assert.Equal(model.Config, PhiLoader.ReadConfig(dir));
        using var loaded = PhiLoader.Load(dir, None);
        loaded.eval();
        double diff = MaxDiff(model, loaded);
        output.WriteLine($"phi gqa fp32: max |logit difference| = {diff:E2}");
        Assert.True(diff < 1e-5, $"max abs logit difference {diff}");
    }

    [Fact]
    public void ANonEmptyTargetIsRefusedAndOnlyFloatStorageTypesAreAccepted()
    {
        using var model = AdaptedModel();
        using var temp = new TempDir();
        string full = Path.Combine(temp.Path, "full");
        Directory.CreateDirectory(full);
        File.WriteAllText(Path.Combine(full, "keep.txt"), "mine");
        Assert.Throws<IOException>(() => PhiSaver.SaveMerged(model, full));
        Assert.Equal(["keep.txt"], Directory.EnumerateFileSystemEntries(full).Select(Path.GetFileName));

        string target = Path.Combine(temp.Path, "merged");
        Assert.Throws<ArgumentException>(() => PhiSaver.SaveMerged(model, target, ScalarType.Float64));
        Assert.Equal([full], Directory.EnumerateFileSystemEntries(temp.Path));
    }

    private sealed class TempDir : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("colm-phisave-").FullName;

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
