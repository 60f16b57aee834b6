using System.Text.Json;
using System.Text.Json.Nodes;
using CoLM.Model.Phi;
using CoLM.Model.SafeTensors;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace CoLM.Model.Tests;

/// <summary>
/// PhiDecoder against tests/fixtures/phi (made by make_fixture.py, an independent pure-Python forward pass):
/// tiny/ has Phi-2's layout (num_key_value_heads null, head_dim 8, rotary_dim 4) with rope_theta 500; tiny_gqa/ has
/// 4 query heads over 2 key/value heads and rotary over whole heads (partial_rotary_factor 1).
/// </summary>
public sealed class PhiDecoderTests(ITestOutputHelper output)
{
    private static readonly LoraSettings AllTargets = new(Rank: 2, Alpha: 4.0, Dropout: 0.0, PhiDecoder.KnownLoraTargets);

    [Theory]
    [InlineData("tiny")]
    [InlineData("tiny_gqa")]
    public void Logits_match_the_reference_forward_pass(string fixture)
    {
        string dir = PhiFixtures.Dir(fixture);
        using var model = PhiLoader.Load(dir, AllTargets); // LoRA B starts at zero: the adapted model is the base model
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var expected = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "expected.json")));
        var sequences = expected.RootElement.GetProperty("sequences").EnumerateArray().ToList();
        var logits = expected.RootElement.GetProperty("logits").EnumerateArray().ToList();

        double worst = 0;
        for (int s = 0; s < sequences.Count; s++)
        {
            long[] tokens = sequences[s].EnumerateArray().Select(t => t.GetInt64()).ToArray();
            var actual = model.forward(tensor(tokens, [1, tokens.Length]));
            Assert.Equal(new long[] { 1, tokens.Length, model.Config.VocabSize }, actual.shape);
            var rows = logits[s].EnumerateArray().ToList();
            Assert.Equal(tokens.Length, rows.Count);
            for (int t = 0; t < rows.Count; t++)
            {
                var values = rows[t].EnumerateArray().Select(v => (float)v.GetDouble()).ToArray();
                using var reference = tensor(values);
                worst = Math.Max(worst, (actual[0, t] - reference).abs().max().item<float>());
            }
        }
        output.WriteLine($"{fixture}: max |logit - reference| = {worst:E2}");
        Assert.True(worst < 1e-4, $"max abs logit difference {worst:E3} >= 1e-4");
    }

    [Fact]
    public void A_batch_gives_the_same_logits_as_its_rows_one_by_one()
    {
        using var model = PhiLoader.Load(PhiFixtures.Dir("tiny"), AllTargets);
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var batch = tensor(new long[] { 3, 17, 5, 39, 11, 2, 30, 30 }, [2, 4]);

        var together = model.forward(batch);

        for (int row = 0; row < 2; row++)
            Assert.True(together[row].allclose(model.forward(batch[row..(row + 1)])[0], rtol: 0, atol: 1e-5));
    }

    [Fact]
    public void Attention_is_causal_a_later_token_never_changes_earlier_logits()
    {
        using var model = PhiLoader.Load(PhiFixtures.Dir("tiny"), AllTargets);
        model.eval();
        PhiFixtures.RandomizeLoraB(model); // make the adapters part of the function too
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var tokens = tensor(new long[] { 3, 17, 5, 39, 0, 22, 8, 1 }, [1, 8]);
        var changed = tokens.clone();
        changed[0, 5] = tensor(7L);

        var before = model.forward(tokens);
        var after = model.forward(changed);

        Assert.True(before[.., ..5].allclose(after[.., ..5], rtol: 0, atol: 1e-6));
        Assert.False(before[.., 5..].allclose(after[.., 5..], rtol: 0, atol: 1e-4));
    }

    [Fact]
    public void Only_lora_matrices_of_the_targets_require_grad_and_get_gradients()
    {
        var lora = new LoraSettings(Rank: 3, Alpha: 6.0, Dropout: 0.0, ["v_proj", "dense", "fc2"]);
        using var model = PhiLoader.Load(PhiFixtures.Dir("tiny_gqa"), lora, seed: 5);

        var trainable = model.TrainableParameters();
        var frozen = model.FrozenParameters();

        Assert.Equal(2 * 3 * 2, trainable.Count); // 2 layers x 3 targets x (A, B)
        Assert.All(trainable, p => Assert.Matches(@"^layers\.\d\.(self_attn\.(v_proj|dense)|mlp\.fc2)\.lora_[AB]$", p.Name));
        var vA = trainable.Single(p => p.Name == "layers.0.self_attn.v_proj.lora_A").Parameter;
        var vB = trainable.Single(p => p.Name == "layers.0.self_attn.v_proj.lora_B").Parameter;
        Assert.Equal(new long[] { 3, 16 }, vA.shape);
        Assert.Equal(new long[] { 8, 3 }, vB.shape); // 2 key/value heads of 4
        Assert.All(frozen, p => Assert.False(p.Tensor.requires_grad));
        var frozenNames = frozen.Select(p => p.Name).ToHashSet();
        // Every checkpoint tensor, named without "model.", is a frozen parameter.
        var expectedNames = PhiLoader.ExpectedTensors(model.Config).Select(e => e.Name.StartsWith("model.") ? e.Name["model.".Length..] : e.Name);
        Assert.Equal(expectedNames.ToHashSet(), frozenNames);

        using (var scope = NewDisposeScope())
        {
            PhiFixtures.RandomizeLoraB(model);
            var logits = model.forward(tensor(new long[] { 1, 2, 3, 4, 5 }, [1, 5]));
            logits.square().mean().backward();
        }
        Assert.All(trainable, p => Assert.True(p.Parameter.grad is not null && p.Parameter.grad.abs().sum().item<float>() > 0, p.Name));
        Assert.All(model.named_parameters().Where(p => !p.parameter.requires_grad), p => Assert.Null(p.parameter.grad));
    }

    [Fact]
    public void Lora_settings_outside_phi_targets_are_rejected()
    {
        var llamaTarget = new LoraSettings(Rank: 2, Alpha: 4.0, Dropout: 0.0, ["o_proj"]);

        var error = Assert.Throws<ArgumentException>(() => PhiLoader.Load(PhiFixtures.Dir("tiny"), llamaTarget));

        Assert.Contains("o_proj", error.Message);
    }

    [Fact]
    public void Config_is_read_with_null_key_value_heads_meaning_one_per_head()
    {
        var config = PhiLoader.ReadConfig(PhiFixtures.Dir("tiny"));

        Assert.Equal(new PhiConfig(40, 16, 32, 2, 2, 2, 0.5, 500.0, 1e-5, 32), config);
        Assert.Equal(4, config.RotaryDim);
    }

    [Fact]
    public void Wrong_architecture_is_an_error_naming_the_config_file()
    {
        using var dir = PhiFixtures.Copy("tiny");
        dir.EditConfig(c => c["architectures"] = new JsonArray("LlamaForCausalLM"));

        var error = Assert.Throws<InvalidDataException>(() => PhiLoader.Load(dir.Path, AllTargets));

        Assert.Contains(Path.Combine(dir.Path, "config.json"), error.Message);
        Assert.Contains("LlamaForCausalLM", error.Message);
        Assert.Contains("PhiForCausalLM", error.Message);
    }

    [Fact]
    public void A_missing_tensor_is_an_error_naming_tensor_and_file()
    {
        using var dir = PhiFixtures.Copy("tiny");
        dir.RewriteWeights(tensors => tensors.Where(t => t.Name != "model.layers.1.mlp.fc1.bias"));

        var error = Assert.Throws<InvalidDataException>(() => PhiLoader.Load(dir.Path, AllTargets));

        Assert.Contains("'model.layers.1.mlp.fc1.bias' is missing", error.Message);
        Assert.Contains(Path.Combine(dir.Path, "model.safetensors"), error.Message);
    }

    [Fact]
    public void A_wrong_shape_and_an_unexpected_tensor_are_errors_naming_them()
    {
        using var dir = PhiFixtures.Copy("tiny");
        dir.RewriteWeights(tensors => tensors
            .Select(t => t.Name == "model.layers.0.self_attn.k_proj.weight" ? (t.Name, t.Tensor.narrow(0, 0, 8)) : t)
            .Append(("model.layers.0.self_attn.rotary_emb.inv_freq", ones(2))));

        var error = Assert.Throws<InvalidDataException>(() => PhiLoader.Load(dir.Path, AllTargets));

        Assert.Contains("'model.layers.0.self_attn.k_proj.weight' has shape [8, 16], expected [16, 16]", error.Message);
        Assert.Contains("unexpected tensor 'model.layers.0.self_attn.rotary_emb.inv_freq'", error.Message);
        Assert.Contains(Path.Combine(dir.Path, "model.safetensors"), error.Message);
    }
}

internal static class PhiFixtures
{
    /// <summary>tests/fixtures/phi/{name}, found by walking up from the test binaries to the repository root.</summary>
    public static string Dir(string name)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "fixtures", "phi", name);
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException($"tests/fixtures/phi/{name} not found above {AppContext.BaseDirectory}");
    }

    public static FixtureCopy Copy(string name) => new(Dir(name));

    /// <summary>Sets every LoRA B to small seeded random values, so the adapters change the function.</summary>
    public static void RandomizeLoraB(PhiDecoder model)
    {
        using var noGrad = no_grad();
        using var generator = new torch.Generator(11);
        foreach (var (name, parameter) in model.TrainableParameters().Where(p => p.Name.EndsWith("lora_B")))
        {
            using var values = randn(parameter.shape, generator: generator);
            parameter.copy_(values * 0.1);
        }
    }

    /// <summary>A temporary copy of a fixture directory, deleted on dispose.</summary>
    public sealed class FixtureCopy : IDisposable
    {
        public FixtureCopy(string source)
        {
            Path = Directory.CreateTempSubdirectory("phi-fixture-").FullName;
            foreach (var file in Directory.GetFiles(source))
                File.Copy(file, System.IO.Path.Combine(Path, System.IO.Path.GetFileName(file)));
        }

        public string Path { get; }

        public void EditConfig(Action<JsonObject> edit)
        {
            string path = System.IO.Path.Combine(Path, "config.json");
            var config = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            edit(config);
            File.WriteAllText(path, config.ToJsonString());
        }

        public void RewriteWeights(Func<IEnumerable<(string Name, Tensor Tensor)>, IEnumerable<(string Name, Tensor Tensor)>> edit)
        {
            string path = System.IO.Path.Combine(Path, "model.safetensors");
            using var scope = NewDisposeScope();
            List<(string Name, Tensor Tensor)> tensors;
            using (var file = SafeTensorsFile.Open(path))
                tensors = file.Tensors.Select(t => (t.Name, file.ReadTensor(t.Name))).ToList();
            var edited = edit(tensors).ToList();
            SafeTensorsWriter.Write(path, edited);
        }

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
