using System.Text.Json;
using System.Text.Json.Nodes;
using CoLM.Model.Hf;
using CoLM.Model.SafeTensors;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace CoLM.Model.Tests;

/// <summary>
/// HfModelLoader against tests/fixtures/hf: tiny random-weight models with reference logits from
/// make_fixtures.py, an independent float64 pure-Python implementation of the Hugging Face forward pass.
/// </summary>
public sealed class HfModelLoaderTests(ITestOutputHelper output)
{
    private static readonly LoraSettings NoLora = new(Rank: 2, Alpha: 4, Dropout: 0, Targets: []);

    internal static string Fixture(string name)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "fixtures", "hf", name);
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException($"tests/fixtures/hf/{name} not found above {AppContext.BaseDirectory}.");
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("llama_tied")]
    [InlineData("phi3")]
    public void LogitsMatchTheReferenceImplementation(string fixture)
    {
        string dir = Fixture(fixture);
        using var model = HfModelLoader.Load(dir, NoLora);
        double worst = MaxDiffToExpected(model, dir);
        output.WriteLine($"{fixture}: max |logit - reference| = {worst:E2}");
        Assert.True(worst < 1e-4, $"{fixture}: max abs logit difference {worst}");
    }

    [Fact]
    public void ConfigIsReadIntoTheDecoderConfig()
    {
        using var llama = HfModelLoader.Load(Fixture("llama"), NoLora);
        Assert.Equal(new DecoderConfig(40, 16, 2, 4, 24, 32, 10000.0, 1e-5) { KvHeads = 2 }, llama.Config);
        using var tied = HfModelLoader.Load(Fixture("llama_tied"), NoLora);
        Assert.Equal(new DecoderConfig(40, 16, 2, 4, 24, 32, 500000.0, 1e-6) { KvHeads = 1, TieEmbeddings = true }, tied.Config);
    }

    [Fact]
    public void Phi3SplitEqualsLlamaLoadedFromTheUnfusedWeights()
    {
        string phi3 = Fixture("phi3");
        using var temp = new TempDir();
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(phi3, "config.json")))!.AsObject();
        config["architectures"] = new JsonArray("LlamaForCausalLM");
        config["model_type"] = "llama";
        File.WriteAllText(Path.Combine(temp.Path, "config.json"), config.ToJsonString());
        int q = 16, kv = 2 * 4, ff = 24;
        using (var scope = NewDisposeScope())
        using (var file = SafeTensorsFile.Open(Path.Combine(phi3, "model.safetensors")))
        {
            var unfused = new List<(string, Tensor)>();
            foreach (var info in file.Tensors)
            {
                var t = file.ReadTensor(info.Name);
                if (info.Name.EndsWith("qkv_proj.weight", StringComparison.Ordinal))
                {
                    string p = info.Name[..^"qkv_proj.weight".Length];
                    unfused.Add((p + "q_proj.weight", t.narrow(0, 0, q)));
                    unfused.Add((p + "k_proj.weight", t.narrow(0, q, kv)));
                    unfused.Add((p + "v_proj.weight", t.narrow(0, q + kv, kv)));
                }
                else if (info.Name.EndsWith("gate_up_proj.weight", StringComparison.Ordinal))
                {
                    string p = info.Name[..^"gate_up_proj.weight".Length];
                    unfused.Add((p + "gate_proj.weight", t.narrow(0, 0, ff)));
                    unfused.Add((p + "up_proj.weight", t.narrow(0, ff, ff)));
                }
                else
                {
                    unfused.Add((info.Name, t));
                }
            }
            SafeTensorsWriter.Write(Path.Combine(temp.Path, "model.safetensors"), unfused.Select(u => (u.Item1, u.Item2.contiguous())));
        }

        var lora = Tiny.Lora(rank: 2, targets: ["v_proj"]);
        using var split = HfModelLoader.Load(phi3, lora, loraSeed: 3);
        using var llama = HfModelLoader.Load(temp.Path, lora, loraSeed: 3);
        var splitParams = split.named_parameters().ToList();
        var llamaParams = llama.named_parameters().ToList();
        Assert.Equal(llamaParams.Select(p => p.name), splitParams.Select(p => p.name));
        for (int i = 0; i < splitParams.Count; i++) Assert.Equal(Tiny.Values(llamaParams[i].parameter), Tiny.Values(splitParams[i].parameter));
        // LoRA on v alone: exactly one adapter per layer, on v_proj.
        Assert.Equal(["layers.0.self_attn.v_proj.lora_A", "layers.0.self_attn.v_proj.lora_B", "layers.1.self_attn.v_proj.lora_A", "layers.1.self_attn.v_proj.lora_B"],
            split.TrainableParameters().Select(p => p.Name));

        using var scope2 = NewDisposeScope();
        using var noGrad = no_grad();
        var tokens = tensor(new long[] { 1, 5, 9, 3, 7, 2, 30, 11 }, [1, 8]);
        Assert.Equal(Tiny.Values(llama.forward(tokens)), Tiny.Values(split.forward(tokens)));
    }

    [Fact]
    public void Phi3FusedLoraTargetsCoverTheirParts()
    {
        using var model = HfModelLoader.Load(Fixture("phi3"), Tiny.Lora(rank: 2, targets: ["qkv_proj", "gate_up_proj"]));
        var adapted = model.TrainableParameters().Select(p => p.Name).Where(n => n.StartsWith("layers.0.", StringComparison.Ordinal) && n.EndsWith("lora_A", StringComparison.Ordinal));
        Assert.Equal(["layers.0.self_attn.q_proj.lora_A", "layers.0.self_attn.k_proj.lora_A", "layers.0.self_attn.v_proj.lora_A",
            "layers.0.mlp.gate_proj.lora_A", "layers.0.mlp.up_proj.lora_A"], adapted);
    }

    [Fact]
    public void UnknownArchitectureIsRefusedByName()
    {
        using var temp = CopyOf("llama", config => config["architectures"] = new JsonArray("GPTNeoXForCausalLM"));
        var e = Assert.Throws<NotSupportedException>(() => HfModelLoader.Load(temp.Path, NoLora));
        Assert.Contains("GPTNeoXForCausalLM", e.Message);
        Assert.Contains("LlamaForCausalLM", e.Message);
        Assert.Contains("Phi3ForCausalLM", e.Message);
    }

    [Fact]
    public void RopeScalingOfAnotherTypeIsRefusedByName()
    {
        using var temp = CopyOf("llama", config => config["rope_scaling"] = new JsonObject { ["rope_type"] = "yarn", ["factor"] = 4.0 });
        var e = Assert.Throws<NotSupportedException>(() => HfModelLoader.Load(temp.Path, NoLora));
        Assert.Contains("rope_scaling", e.Message);
        Assert.Contains("'yarn'", e.Message);
    }

    [Fact]
    public void Llama3RopeScalingWithoutItsFactorsIsRefusedNamingTheField()
    {
        using var temp = CopyOf("llama", config => config["rope_scaling"] = new JsonObject { ["rope_type"] = "llama3", ["factor"] = 8.0 });
        var e = Assert.Throws<InvalidDataException>(() => HfModelLoader.Load(temp.Path, NoLora));
        Assert.Contains("low_freq_factor", e.Message);
    }

    [Fact]
    public void Llama3RopeScalingLoadsChangesLongPositionsOnlyAndIsSavedBack()
    {
        using var temp = CopyOf("llama", config => config["rope_scaling"] = new JsonObject
        {
            ["rope_type"] = "llama3",
            ["factor"] = 8.0,
            ["low_freq_factor"] = 1.0,
            ["high_freq_factor"] = 4.0,
            ["original_max_position_embeddings"] = 4,
        });
        var scaling = HfConfig.Read(temp.Path).Decoder.RopeScaling;
        Assert.Equal(new RopeScaling("llama3", 8.0, 1.0, 4.0, 4), scaling);

        using var plain = HfModelLoader.Load(Fixture("llama"), NoLora);
        using var scaled = HfModelLoader.Load(temp.Path, NoLora);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var tokens = tensor(new long[] { 1, 5, 9, 3, 7, 2 }, [1, 6]);
        // Position 0 has angle 0 under any scaling; later positions turn the low frequencies less.
        Assert.True((plain.forward(tokens)[0, 0] - scaled.forward(tokens)[0, 0]).abs().max().item<float>() < 1e-6);
        Assert.True((plain.forward(tokens)[0, 5] - scaled.forward(tokens)[0, 5]).abs().max().item<float>() > 1e-4);

        var saved = Path.Combine(temp.Path, "saved");
        HfModelSaver.SaveMerged(scaled, saved);
        Assert.Equal(scaling, HfConfig.Read(saved).Decoder.RopeScaling);
    }

    [Fact]
    public void MistralConfigLoadsAsLlamaWithTheSlidingWindowCappingSequences()
    {
        using var temp = CopyOf("llama", config =>
        {
            config["architectures"] = new JsonArray("MistralForCausalLM");
            config["sliding_window"] = 16;
        });
        using var model = HfModelLoader.Load(temp.Path, NoLora);
        Assert.Equal(16, model.Config.MaxSeqLen);
        Assert.True(MaxDiffToExpected(model, Fixture("llama")) < 1e-4);
    }

    [Fact]
    public void MissingTensorIsNamed()
    {
        const string missing = "model.layers.1.mlp.down_proj.weight";
        using var temp = CopyOf("llama", rewriteTensors: tensors => tensors.Where(t => t.Name != missing));
        var e = Assert.Throws<InvalidDataException>(() => HfModelLoader.Load(temp.Path, NoLora));
        Assert.Contains(missing, e.Message);
        Assert.Contains("model.safetensors", e.Message);
    }

    [Fact]
    public void UnexpectedTensorIsNamed()
    {
        using var temp = CopyOf("llama", rewriteTensors: tensors => tensors.Append(("model.layers.0.self_attn.q_proj.bias", zeros(16))));
        var e = Assert.Throws<InvalidDataException>(() => HfModelLoader.Load(temp.Path, NoLora));
        Assert.Contains("model.layers.0.self_attn.q_proj.bias", e.Message);
    }

    [Fact]
    public void WrongShapeIsNamed()
    {
        using var temp = CopyOf("llama", rewriteTensors: tensors =>
            tensors.Select(t => t.Name == "model.norm.weight" ? (t.Name, ones(17)) : t));
        var e = Assert.Throws<InvalidDataException>(() => HfModelLoader.Load(temp.Path, NoLora));
        Assert.Contains("model.norm.weight", e.Message);
        Assert.Contains("[17]", e.Message);
    }

    [Theory]
    [InlineData("llama", ScalarType.Float16, 2e-2)]
    [InlineData("llama", ScalarType.BFloat16, 1.5e-1)]
    [InlineData("phi3", ScalarType.Float16, 2e-2)]
    [InlineData("phi3", ScalarType.BFloat16, 1.5e-1)]
    public void HalfPrecisionStoredWeightsLoad(string fixture, ScalarType stored, double tolerance)
    {
        using var temp = CopyOf(fixture, rewriteTensors: tensors => tensors.Select(t => (t.Name, t.Tensor.to_type(stored))));
        using (var file = SafeTensorsFile.Open(Path.Combine(temp.Path, "model.safetensors")))
            Assert.All(file.Tensors, t => Assert.Equal(SafeTensorDTypes.FromScalarType(stored), t.DType));
        using var model = HfModelLoader.Load(temp.Path, NoLora);
        double worst = MaxDiffToExpected(model, Fixture(fixture));
        output.WriteLine($"{fixture} stored as {stored}, fp32 compute: max |logit - reference| = {worst:E2}");
        Assert.True(worst < tolerance, $"{fixture} {stored}: max abs logit difference {worst}");
    }

    [Theory]
    [InlineData(ScalarType.Float16, 5e-2)]
    [InlineData(ScalarType.BFloat16, 3e-1)]
    public void ComputeDtypeIsApplied(ScalarType compute, double tolerance)
    {
        string dir = Fixture("llama");
        using var model = HfModelLoader.Load(dir, NoLora, compute);
        Assert.All(model.parameters(), p => Assert.Equal(compute, p.dtype));
        double worst = MaxDiffToExpected(model, dir);
        output.WriteLine($"llama computed in {compute}: max |logit - reference| = {worst:E2}");
        Assert.True(worst < tolerance, $"{compute}: max abs logit difference {worst}");
    }

    [Fact]
    public void ShardedCheckpointLoads()
    {
        string source = Fixture("llama");
        using var temp = new TempDir();
        File.Copy(Path.Combine(source, "config.json"), Path.Combine(temp.Path, "config.json"));
        var weightMap = new JsonObject();
        using (var scope = NewDisposeScope())
        using (var file = SafeTensorsFile.Open(Path.Combine(source, "model.safetensors")))
        {
            var all = file.Tensors.Select(t => (t.Name, file.ReadTensor(t.Name))).ToList();
            var shards = new[] { all.Where((_, i) => i % 2 == 0).ToList(), all.Where((_, i) => i % 2 == 1).ToList() };
            for (int s = 0; s < shards.Length; s++)
            {
                string shardName = $"model-0000{s + 1}-of-00002.safetensors";
                SafeTensorsWriter.Write(Path.Combine(temp.Path, shardName), shards[s]);
                foreach (var (name, _) in shards[s]) weightMap[name] = shardName;
            }
        }
        var index = new JsonObject { ["metadata"] = new JsonObject(), ["weight_map"] = weightMap };
        File.WriteAllText(Path.Combine(temp.Path, "model.safetensors.index.json"), index.ToJsonString());
        using var model = HfModelLoader.Load(temp.Path, NoLora);
        Assert.True(MaxDiffToExpected(model, source) < 1e-4);
    }

    /// <summary>Runs each reference sequence through the model (fp32 logits) and returns the largest absolute difference.</summary>
    private static double MaxDiffToExpected(LlamaDecoder model, string fixtureDir)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(fixtureDir, "expected.json")));
        var sequences = doc.RootElement.GetProperty("sequences").EnumerateArray().ToList();
        var logits = doc.RootElement.GetProperty("logits").EnumerateArray().ToList();
        Assert.Equal(sequences.Count, logits.Count);
        double worst = 0;
        model.eval();
        using var noGrad = no_grad();
        for (int s = 0; s < sequences.Count; s++)
        {
            using var scope = NewDisposeScope();
            long[] tokens = sequences[s].EnumerateArray().Select(t => t.GetInt64()).ToArray();
            float[] actual = Tiny.Values(model.forward(tensor(tokens, [1, tokens.Length])));
            double[] expected = logits[s].EnumerateArray().SelectMany(row => row.EnumerateArray()).Select(v => v.GetDouble()).ToArray();
            Assert.Equal(expected.Length, actual.Length);
            for (int i = 0; i < expected.Length; i++) worst = Math.Max(worst, Math.Abs(expected[i] - actual[i]));
        }
        return worst;
    }

    /// <summary>A temporary copy of a fixture, with its config and/or tensors rewritten.</summary>
    private static TempDir CopyOf(
        string fixture, Action<JsonObject>? editConfig = null,
        Func<IEnumerable<(string Name, Tensor Tensor)>, IEnumerable<(string Name, Tensor Tensor)>>? rewriteTensors = null)
    {
        string source = Fixture(fixture);
        var temp = new TempDir();
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "config.json")))!.AsObject();
        editConfig?.Invoke(config);
        File.WriteAllText(Path.Combine(temp.Path, "config.json"), config.ToJsonString());
        string weights = Path.Combine(temp.Path, "model.safetensors");
        if (rewriteTensors is null)
        {
            File.Copy(Path.Combine(source, "model.safetensors"), weights);
            return temp;
        }
        using var scope = NewDisposeScope();
        using var file = SafeTensorsFile.Open(Path.Combine(source, "model.safetensors"));
        var tensors = file.Tensors.Select(t => (t.Name, file.ReadTensor(t.Name))).ToList();
        SafeTensorsWriter.Write(weights, rewriteTensors(tensors).ToList());
        return temp;
    }

    private sealed class TempDir : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("colm-hf-").FullName;

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
