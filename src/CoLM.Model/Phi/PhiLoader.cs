using System.Text.Json;
using CoLM.Model.SafeTensors;
using static TorchSharp.torch;

namespace CoLM.Model.Phi;

/// <summary>
/// Loads a Hugging Face Phi checkpoint directory (config.json plus model.safetensors, or an index and shards) into a
/// <see cref="PhiDecoder"/>. The config must name the PhiForCausalLM architecture; the checkpoint must hold exactly the
/// tensors that config implies, each with its expected shape and a floating-point dtype. Every check runs before any
/// weight is read; problems throw <see cref="InvalidDataException"/> naming the file and, for tensors, each tensor at fault.
/// Weights are converted to the compute dtype (float32 unless asked otherwise).
/// </summary>
public static class PhiLoader
{
    public const string Architecture = "PhiForCausalLM";
    public const string ConfigFileName = "config.json";

    /// <summary>Loads with LoRA A initial values seeded by 0.</summary>
    public static PhiDecoder Load(string modelDir, LoraSettings lora) => Load(modelDir, lora, seed: 0);

    /// <summary>Loads with LoRA A initial values drawn from <paramref name="seed"/> (per tensor name, as LlamaDecoder does).</summary>
    public static PhiDecoder Load(string modelDir, LoraSettings lora, long seed) => Load(modelDir, lora, seed, ScalarType.Float32);

    /// <summary>
    /// Loads with the frozen weights read in <paramref name="computeDType"/> (Float32, Float16 or BFloat16; converted
    /// from the stored dtype tensor by tensor); LoRA A and B are fp32 (see <see cref="CausalDecoder.CastBaseWeights"/>).
    /// </summary>
    public static PhiDecoder Load(string modelDir, LoraSettings lora, long seed, ScalarType computeDType)
    {
        if (computeDType is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16))
            throw new ArgumentException($"Compute dtype must be Float32, Float16 or BFloat16, got {computeDType}.", nameof(computeDType));
        ArgumentNullException.ThrowIfNull(modelDir);
        ArgumentNullException.ThrowIfNull(lora);
        PhiDecoder.ValidateLora(lora);
        var config = ReadConfig(modelDir);
        using var weights = ShardedSafeTensors.Open(modelDir);
        CheckTensors(modelDir, config, weights);
        using var scope = NewDisposeScope();
        return new PhiDecoder(config, lora, seed, name => weights.ReadTensor(name, computeDType));
    }

    /// <summary>Reads and validates <c>config.json</c> of a Phi checkpoint directory.</summary>
    public static PhiConfig ReadConfig(string modelDir)
    {
        ArgumentNullException.ThrowIfNull(modelDir);
        string path = Path.Combine(modelDir, ConfigFileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: the model directory has no {ConfigFileName}", path);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw Problem(path, $"must be a JSON object, found {root.ValueKind}");
            CheckArchitecture(path, root);
            if (root.TryGetProperty("hidden_act", out var act) && act.ValueKind != JsonValueKind.Null &&
                !(act.ValueKind == JsonValueKind.String && act.GetString() == "gelu_new"))
                throw Problem(path, $"hidden_act must be \"gelu_new\", found {act.GetRawText()}");
            if (root.TryGetProperty("qk_layernorm", out var qkNorm) && qkNorm.ValueKind == JsonValueKind.True)
                throw Problem(path, "qk_layernorm = true is not supported");
            if (root.TryGetProperty("rope_scaling", out var scaling) && scaling.ValueKind != JsonValueKind.Null)
                throw Problem(path, "rope_scaling is not supported; it must be null or absent");
            if (root.TryGetProperty("tie_word_embeddings", out var tied) && tied.ValueKind == JsonValueKind.True)
                throw Problem(path, "tie_word_embeddings = true is not supported (lm_head must be its own tensor)");

            int heads = Int(path, root, "num_attention_heads");
            var config = new PhiConfig(
                VocabSize: Int(path, root, "vocab_size"),
                Hidden: Int(path, root, "hidden_size"),
                Intermediate: Int(path, root, "intermediate_size"),
                Layers: Int(path, root, "num_hidden_layers"),
                Heads: heads,
                KeyValueHeads: OptionalInt(path, root, "num_key_value_heads") ?? heads,
                PartialRotaryFactor: Double(path, root, "partial_rotary_factor"),
                RopeTheta: Double(path, root, "rope_theta"),
                LayerNormEps: Double(path, root, "layer_norm_eps"),
                MaxPositions: Int(path, root, "max_position_embeddings"));
            try
            {
                config.Validate();
            }
            catch (ArgumentException e)
            {
                throw new InvalidDataException($"{path}: {e.Message}", e);
            }
            return config;
        }
    }

    /// <summary>Every tensor a checkpoint of this config holds, by Hugging Face name, with its shape.</summary>
    public static IReadOnlyList<(string Name, long[] Shape)> ExpectedTensors(PhiConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        long d = config.Hidden, kv = config.KeyValueDim, ff = config.Intermediate, vocab = config.VocabSize;
        var expected = new List<(string, long[])> { ("model.embed_tokens.weight", [vocab, d]) };
        for (int i = 0; i < config.Layers; i++)
        {
            string p = $"model.layers.{i}";
            expected.Add(($"{p}.input_layernorm.weight", [d]));
            expected.Add(($"{p}.input_layernorm.bias", [d]));
            foreach (var (name, outDim) in new[] { ("q_proj", d), ("k_proj", kv), ("v_proj", kv), ("dense", d) })
            {
                expected.Add(($"{p}.self_attn.{name}.weight", [outDim, d]));
                expected.Add(($"{p}.self_attn.{name}.bias", [outDim]));
            }
            expected.Add(($"{p}.mlp.fc1.weight", [ff, d]));
            expected.Add(($"{p}.mlp.fc1.bias", [ff]));
            expected.Add(($"{p}.mlp.fc2.weight", [d, ff]));
            expected.Add(($"{p}.mlp.fc2.bias", [d]));
        }
        expected.Add(("model.final_layernorm.weight", [d]));
        expected.Add(("model.final_layernorm.bias", [d]));
        expected.Add(("lm_head.weight", [vocab, d]));
        expected.Add(("lm_head.bias", [vocab]));
        return expected;
    }

    private static void CheckTensors(string modelDir, PhiConfig config, ShardedSafeTensors weights)
    {
        string source = File.Exists(Path.Combine(modelDir, ShardedSafeTensors.SingleFileName))
            ? Path.Combine(modelDir, ShardedSafeTensors.SingleFileName)
            : Path.Combine(modelDir, ShardedSafeTensors.IndexFileName);
        string FileOf(string name) => weights.Files.FirstOrDefault(f => f.Contains(name))?.Path ?? source;

        var problems = new List<string>();
        var expected = ExpectedTensors(config);
        foreach (var (name, shape) in expected)
        {
            if (!weights.Contains(name))
            {
                problems.Add($"{source}: tensor '{name}' is missing (expected shape [{string.Join(", ", shape)}])");
                continue;
            }
            var info = weights.Info(name);
            if (!info.Shape.SequenceEqual(shape))
                problems.Add($"{FileOf(name)}: tensor '{name}' has shape [{string.Join(", ", info.Shape)}], expected [{string.Join(", ", shape)}]");
            if (info.DType is not (SafeTensorDType.F32 or SafeTensorDType.F16 or SafeTensorDType.BF16 or SafeTensorDType.F64))
                problems.Add($"{FileOf(name)}: tensor '{name}' has dtype {info.DType}, expected a floating-point dtype");
        }
        var known = expected.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var name in weights.Names.Where(n => !known.Contains(n)).Order(StringComparer.Ordinal))
            problems.Add($"{FileOf(name)}: unexpected tensor '{name}' (not part of a {Architecture} with this config)");

        if (problems.Count > 0)
        {
            const int shown = 20;
            string more = problems.Count > shown ? $"{Environment.NewLine}... and {problems.Count - shown} more" : "";
            throw new InvalidDataException(
                $"The Phi checkpoint in {modelDir} does not match its config ({problems.Count} problem(s)):{Environment.NewLine}" +
                string.Join(Environment.NewLine, problems.Take(shown)) + more);
        }
    }

    private static void CheckArchitecture(string path, JsonElement root)
    {
        if (!root.TryGetProperty("architectures", out var architectures) || architectures.ValueKind != JsonValueKind.Array)
            throw Problem(path, $"'architectures' must be a list naming {Architecture}");
        var names = architectures.EnumerateArray().Select(a => a.ValueKind == JsonValueKind.String ? a.GetString() : a.GetRawText()).ToList();
        if (names.Count != 1 || names[0] != Architecture)
            throw Problem(path, $"architectures must be [\"{Architecture}\"], found [{string.Join(", ", names.Select(n => $"\"{n}\""))}]");
    }

    private static int Int(string path, JsonElement root, string field) =>
        OptionalInt(path, root, field) ?? throw Problem(path, $"missing '{field}'");

    private static int? OptionalInt(string path, JsonElement root, string field)
    {
        if (!root.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out int result))
            throw Problem(path, $"'{field}' must be an integer, found {value.GetRawText()}");
        return result;
    }

    private static double Double(string path, JsonElement root, string field)
    {
        if (!root.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null) throw Problem(path, $"missing '{field}'");
        if (value.ValueKind != JsonValueKind.Number) throw Problem(path, $"'{field}' must be a number, found {value.GetRawText()}");
        return value.GetDouble();
    }

    private static InvalidDataException Problem(string path, string problem) => new($"{path}: {problem}");
}
