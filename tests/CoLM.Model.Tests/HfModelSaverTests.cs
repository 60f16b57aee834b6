using CoLM.Model.Hf;
using CoLM.Model.SafeTensors;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace CoLM.Model.Tests;

/// <summary>HfModelSaver: merged LoRA weights saved as a Hugging Face folder load back into the same function.</summary>
public sealed class HfModelSaverTests(ITestOutputHelper output)
{
    // Grouped-query attention (KvHeads < Heads) so k/v projections have their own (KvDim, Dim) shape.
    private static readonly DecoderConfig Gqa = Tiny.Config with { KvHeads = 2 };

    /// <summary>A model whose every LoRA B is random and nonzero, so the merge changes every adapted weight.</summary>
    private static LlamaDecoder AdaptedModel(DecoderConfig config, LoraSettings lora, long seed = 11)
    {
        var model = new LlamaDecoder(config, lora, seed);
        using var generator = new TorchSharp.torch.Generator((ulong)seed + 1);
        using var noGrad = no_grad();
        foreach (var (name, parameter) in model.TrainableParameters())
        {
            if (!name.EndsWith(".lora_B", StringComparison.Ordinal)) continue;
            using var values = randn(parameter.shape, float32, CPU, generator: generator);
            using var scaled = values.mul(0.05);
            parameter.copy_(scaled);
        }
        model.eval();
        return model;
    }

    private static Tensor Tokens() => Tiny.Batch(3, 16, 11, 7).Inputs;

    private static double MaxDiff(LlamaDecoder a, LlamaDecoder b)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var tokens = Tokens();
        var la = a.forward(tokens).to_type(float32);
        var lb = b.forward(tokens).to_type(float32);
        return la.sub(lb).abs().max().item<float>();
    }

    [Fact]
    public void MergedFp32FolderReproducesTheAdaptedModel()
    {
        var lora = Tiny.Lora(targets: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]);
        using var model = AdaptedModel(Gqa, lora);
        using var temp = new TempDir();
        string dir = Path.Combine(temp.Path, "merged");

        HfModelSaver.SaveMerged(model, dir);

        Assert.Equal(["config.json", "model.safetensors"], Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName).Order());
        Assert.Equal([dir], Directory.EnumerateFileSystemEntries(temp.Path));
        var config = HfConfig.Read(dir);
        Assert.Equal("LlamaForCausalLM", config.ArchitectureName);
        Assert.Equal(Gqa, config.Decoder);
        using (var file = SafeTensorsFile.Open(Path.Combine(dir, "model.safetensors")))
        {
            Assert.Contains(file.Tensors, t => t.Name == "lm_head.weight");
            Assert.Contains(file.Tensors, t => t.Name == "model.layers.1.self_attn.k_proj.weight" && t.Shape.SequenceEqual(new long[] { Gqa.KvDim, Gqa.Dim }));
            Assert.All(file.Tensors, t => Assert.Equal(SafeTensorDType.F32, t.DType));
            Assert.DoesNotContain(file.Tensors, t => t.Name.Contains("lora", StringComparison.Ordinal));
        }

        // Fresh adapters on the same modules: B = 0, so the loaded model is exactly the merged weights.
        using var loaded = HfModelLoader.Load(dir, lora, loraSeed: 5);
        loaded.eval();
        Assert.All(loaded.TrainableParameters().Where(p => p.Name.EndsWith(".lora_B", StringComparison.Ordinal)),
            p => Assert.Equal(0f, p.Parameter.abs().max().item<float>()));
        double diff = MaxDiff(model, loaded);
        output.WriteLine($"fp32: max |logit difference| = {diff:E2}");
        Assert.True(diff < 1e-5, $"max abs logit difference {diff}");

        // The merge mattered: the base weights alone give other logits.
        using var baseOnly = new LlamaDecoder(Gqa, lora, seed: 11);
        baseOnly.eval();
        double baseDiff = MaxDiff(model, baseOnly);
        output.WriteLine($"fp32: adapted vs base-only model: {baseDiff:E2}");
        Assert.True(baseDiff > 1e-3, $"the random LoRA B barely changed the logits ({baseDiff})");
    }

    [Theory]
    [InlineData(ScalarType.Float16, "float16", SafeTensorDType.F16, 5e-3)]
    [InlineData(ScalarType.BFloat16, "bfloat16", SafeTensorDType.BF16, 5e-2)]
    public void HalfPrecisionStorageLoadsCloseToTheAdaptedModel(ScalarType storeAs, string torchDType, SafeTensorDType fileDType, double tolerance)
    {
        var lora = Tiny.Lora(targets: ["q_proj", "v_proj", "down_proj"]);
        using var model = AdaptedModel(Gqa, lora);
        using var temp = new TempDir();
        string dir = Path.Combine(temp.Path, "merged");

        HfModelSaver.SaveMerged(model, dir, storeAs);

        Assert.Contains($"\"torch_dtype\": \"{torchDType}\"", File.ReadAllText(Path.Combine(dir, "config.json")), StringComparison.Ordinal);
        using (var file = SafeTensorsFile.Open(Path.Combine(dir, "model.safetensors")))
            Assert.All(file.Tensors, t => Assert.Equal(fileDType, t.DType));
        using var loaded = HfModelLoader.Load(dir, lora);
        loaded.eval();
        double diff = MaxDiff(model, loaded);
        output.WriteLine($"{storeAs} storage, fp32 compute: max |logit difference| = {diff:E2}");
        Assert.True(diff < tolerance, $"max abs logit difference {diff}");
    }

    [Fact]
    public void TiedEmbeddingsRoundTripWithoutLmHead()
    {
        var config = Gqa with { TieEmbeddings = true };
        var lora = Tiny.Lora(targets: ["v_proj", "up_proj"]);
        using var model = AdaptedModel(config, lora);
        using var temp = new TempDir();
        string dir = Path.Combine(temp.Path, "tied");

        HfModelSaver.SaveMerged(model, dir);

        using (var file = SafeTensorsFile.Open(Path.Combine(dir, "model.safetensors")))
        {
            Assert.DoesNotContain(file.Tensors, t => t.Name == "lm_head.weight");
            Assert.Contains(file.Tensors, t => t.Name == "model.embed_tokens.weight");
        }
        Assert.True(HfConfig.Read(dir).Decoder.TieEmbeddings);
        using var loaded = HfModelLoader.Load(dir, lora);
        loaded.eval();
        double diff = MaxDiff(model, loaded);
        output.WriteLine($"tied, fp32: max |logit difference| = {diff:E2}");
        Assert.True(diff < 1e-5, $"max abs logit difference {diff}");
    }

    [Fact]
    public void Phi3IsSavedAsTheEquivalentUnfusedLlama()
    {
        var lora = new LoraSettings(Rank: 2, Alpha: 4, Dropout: 0, Targets: ["qkv_proj", "gate_up_proj"]);
        using var model = HfModelLoader.Load(HfModelLoaderTests.Fixture("phi3"), lora);
        using (var noGrad = no_grad())
        using (var generator = new TorchSharp.torch.Generator(3))
        {
            foreach (var (name, parameter) in model.TrainableParameters().Where(p => p.Name.EndsWith(".lora_B", StringComparison.Ordinal)))
            {
                using var values = randn(parameter.shape, float32, CPU, generator: generator);
                using var scaled = values.mul(0.05);
                parameter.copy_(scaled);
            }
        }
        model.eval();
        using var temp = new TempDir();
        string dir = Path.Combine(temp.Path, "phi3-merged");

        HfModelSaver.SaveMerged(model, dir);

        Assert.Equal("LlamaForCausalLM", HfConfig.Read(dir).ArchitectureName);
        using var loaded = HfModelLoader.Load(dir, model.Lora);
        loaded.eval();
        double diff = MaxDiff(model, loaded);
        output.WriteLine($"phi3 -> llama, fp32: max |logit difference| = {diff:E2}");
        // Measured 6.9e-6: the fixture's weights (and logits) are larger than the tiny random model's, so fp32 rounding
        // of W + s B A against W x + s B(A x) is too; the bound leaves room for other CPUs' summation order.
        Assert.True(diff < 5e-5, $"max abs logit difference {diff}");
    }

    [Fact]
    public void AnExistingFileAtTheTargetIsRefusedAndNothingIsLeftBehind()
    {
        using var model = AdaptedModel(Gqa, Tiny.Lora(targets: ["v_proj"]));
        using var temp = new TempDir();
        string target = Path.Combine(temp.Path, "merged");
        File.WriteAllText(target, "not a folder");

        var error = Assert.Throws<IOException>(() => HfModelSaver.SaveMerged(model, target));

        Assert.Contains(target, error.Message, StringComparison.Ordinal);
        Assert.Contains("file", error.Message, StringComparison.Ordinal);
        Assert.Equal("not a folder", File.ReadAllText(target));
        Assert.Equal([target], Directory.EnumerateFileSystemEntries(temp.Path));
    }

    [Fact]
    public void ANonEmptyFolderIsRefusedAndAnEmptyOneIsFilled()
    {
        using var model = AdaptedModel(Gqa, Tiny.Lora(targets: ["v_proj"]));
        using var temp = new TempDir();
        string full = Path.Combine(temp.Path, "full");
        Directory.CreateDirectory(full);
        File.WriteAllText(Path.Combine(full, "keep.txt"), "mine");
        Assert.Throws<IOException>(() => HfModelSaver.SaveMerged(model, full));
        Assert.Equal(["keep.txt"], Directory.EnumerateFileSystemEntries(full).Select(Path.GetFileName));

        string empty = Path.Combine(temp.Path, "empty");
        Directory.CreateDirectory(empty);
        HfModelSaver.SaveMerged(model, empty + Path.DirectorySeparatorChar);
        Assert.True(File.Exists(Path.Combine(empty, "model.safetensors")));
        Assert.Equal([empty, full], Directory.EnumerateFileSystemEntries(temp.Path).Order());
    }

    [Fact]
    public void OnlyFloatStorageTypesAreAccepted()
    {
        using var model = AdaptedModel(Gqa, Tiny.Lora(targets: ["v_proj"]));
        using var temp = new TempDir();
        string target = Path.Combine(temp.Path, "merged");
        Assert.Throws<ArgumentException>(() => HfModelSaver.SaveMerged(model, target, ScalarType.Float64));
        Assert.False(Directory.Exists(target));
    }

    private sealed class TempDir : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("colm-save-").FullName;

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
