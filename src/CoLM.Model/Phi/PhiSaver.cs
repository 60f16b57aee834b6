using System.Text.Json;
using System.Text.Json.Nodes;
using CoLM.Model.Hf;
using CoLM.Model.SafeTensors;
using static TorchSharp.torch;

namespace CoLM.Model.Phi;

/// <summary>
/// Saves a <see cref="PhiDecoder"/> with its LoRA adapters merged into the base weights as a Hugging Face
/// PhiForCausalLM folder (config.json and model.safetensors) that <see cref="PhiLoader"/> and transformers load.
/// </summary>
/// <remarks>
/// Each adapted projection is stored as W + s * B A (s = alpha / r), computed in fp32 and then cast to the storage
/// dtype; biases, layernorms, the embedding and lm_head (weight and bias) are stored as they are, under exactly the
/// names <see cref="PhiLoader.ExpectedTensors"/> lists. The folder is written as <see cref="MergedFolder"/> writes
/// one: complete or not at all.
/// </remarks>
public static class PhiSaver
{
    /// <summary>
    /// Writes <paramref name="directory"/> (which must not exist, or be an empty folder) with config.json and
    /// model.safetensors holding the merged weights in <paramref name="storeAs"/> (Float32, Float16 or BFloat16).
    /// With <paramref name="baseModelDir"/>, config.json starts from that folder's config.json, so fields the model does
    /// not carry (token ids, dropout rates, ...) are kept; the shape fields and torch_dtype are the model's.
    /// </summary>
    public static void SaveMerged(PhiDecoder model, string directory, ScalarType storeAs = ScalarType.Float32, string? baseModelDir = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(directory);
        MergedFolder.CheckStorageDType(storeAs, nameof(storeAs));
        JsonObject? baseConfig = baseModelDir is null ? null : ReadBaseConfig(baseModelDir);
        MergedFolder.Write(directory, temp =>
        {
            File.WriteAllText(Path.Combine(temp, PhiLoader.ConfigFileName), ConfigJson(model.Config, storeAs, baseConfig));
            var written = MergedFolder.WriteWeights(model, Path.Combine(temp, ShardedSafeTensors.SingleFileName), storeAs,
                (name, _) => PhiWeights.HfName(name));
            var expected = PhiLoader.ExpectedTensors(model.Config).Select(t => t.Name);
            if (!written.Order(StringComparer.Ordinal).SequenceEqual(expected.Order(StringComparer.Ordinal)))
                throw new InvalidOperationException(
                    $"The Phi model's weights do not name the tensors a {PhiLoader.Architecture} checkpoint holds: " +
                    $"[{string.Join(", ", written.Except(expected))}] extra, [{string.Join(", ", expected.Except(written))}] missing.");
        });
    }

    private static JsonObject ReadBaseConfig(string baseModelDir)
    {
        string path = Path.Combine(baseModelDir, PhiLoader.ConfigFileName);
        PhiLoader.ReadConfig(baseModelDir); // a Phi config, or a clear error naming the file
        return JsonNode.Parse(File.ReadAllText(path)) as JsonObject
            ?? throw new InvalidDataException($"{path}: must be a JSON object");
    }

    /// <summary>config.json: <paramref name="baseConfig"/>'s fields (if any) with the model's shape and the storage dtype.</summary>
    internal static string ConfigJson(PhiConfig c, ScalarType storeAs, JsonObject? baseConfig = null)
    {
        var json = baseConfig?.DeepClone().AsObject() ?? [];
        json["architectures"] = new JsonArray(PhiLoader.Architecture);
        json["model_type"] = "phi";
        json["hidden_act"] = "gelu_new";
        json["hidden_size"] = c.Hidden;
        json["intermediate_size"] = c.Intermediate;
        json["num_hidden_layers"] = c.Layers;
        json["num_attention_heads"] = c.Heads;
        json["num_key_value_heads"] = c.KeyValueHeads;
        json["partial_rotary_factor"] = c.PartialRotaryFactor;
        json["rope_theta"] = c.RopeTheta;
        json["rope_scaling"] = null;
        json["layer_norm_eps"] = c.LayerNormEps;
        json["vocab_size"] = c.VocabSize;
        json["max_position_embeddings"] = c.MaxPositions;
        json["qk_layernorm"] = false;
        json["tie_word_embeddings"] = false;
        json["torch_dtype"] = MergedFolder.TorchDTypeName(storeAs);
        return json.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }
}
