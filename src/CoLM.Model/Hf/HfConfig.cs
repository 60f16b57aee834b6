using System.Globalization;
using System.Text.Json;

namespace CoLM.Model.Hf;

/// <summary>The Hugging Face architectures <see cref="HfModelLoader"/> maps onto <see cref="LlamaDecoder"/>.</summary>
public enum HfArchitecture
{
    /// <summary>LlamaForCausalLM (Llama 2/3, TinyLlama) and MistralForCausalLM: separate q/k/v and gate/up projections.</summary>
    Llama,

    /// <summary>Phi3ForCausalLM: fused qkv_proj and gate_up_proj, split at load.</summary>
    Phi3,
}

/// <summary>A Hugging Face config.json read into a <see cref="DecoderConfig"/>; anything the decoder cannot reproduce exactly is refused.</summary>
public sealed record HfConfig(string ArchitectureName, HfArchitecture Architecture, DecoderConfig Decoder)
{
    public const string FileName = "config.json";

    /// <summary>The architectures[0] values that can be loaded.</summary>
    public static IReadOnlyList<string> SupportedArchitectures { get; } = ["LlamaForCausalLM", "MistralForCausalLM", "Phi3ForCausalLM"];

    /// <summary>Reads modelDir/config.json.</summary>
    public static HfConfig Read(string modelDir)
    {
        string path = Path.Combine(modelDir, FileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"No {FileName} in model folder '{modelDir}'.", path);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON ({e.Message}).", e);
        }
        using (document) return Parse(path, document.RootElement);
    }

    internal static HfConfig Parse(string path, JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: expected a JSON object.");
        string architectureName = ReadArchitectureName(path, root);
        var architecture = architectureName switch
        {
            "LlamaForCausalLM" or "MistralForCausalLM" => HfArchitecture.Llama,
            "Phi3ForCausalLM" => HfArchitecture.Phi3,
            _ => throw new NotSupportedException(
                $"{path}: architecture '{architectureName}' is not supported; supported: {string.Join(", ", SupportedArchitectures)}."),
        };

        int hidden = RequiredInt(path, root, "hidden_size");
        int intermediate = RequiredInt(path, root, "intermediate_size");
        int layers = RequiredInt(path, root, "num_hidden_layers");
        int heads = RequiredInt(path, root, "num_attention_heads");
        int kvHeads = OptionalInt(path, root, "num_key_value_heads") ?? heads; // transformers' default: no grouping
        int vocab = RequiredInt(path, root, "vocab_size");
        int maxPositions = RequiredInt(path, root, "max_position_embeddings");
        // Defaults as in transformers' LlamaConfig / MistralConfig / Phi3Config.
        double eps = OptionalDouble(path, root, "rms_norm_eps") ?? (architecture == HfArchitecture.Phi3 ? 1e-5 : 1e-6);
        double ropeTheta = OptionalDouble(path, root, "rope_theta") ?? 10000.0;
        bool tie = OptionalBool(path, root, "tie_word_embeddings") ?? false;

        RefuseUnsupported(path, root, hidden, heads);

        // Sliding-window attention (Mistral v0.1, Phi-3) only differs from full causal attention beyond the window,
        // so sequences are capped at the window and the decoder stays exact.
        int maxSeqLen = maxPositions;
        if (OptionalInt(path, root, "sliding_window") is { } window && window > 0 && window < maxSeqLen) maxSeqLen = window;

        if (heads < 1 || hidden % heads != 0)
            throw new InvalidDataException($"{path}: hidden_size ({hidden}) must be a multiple of num_attention_heads ({heads}).");
        if (kvHeads < 1 || heads % kvHeads != 0)
            throw new InvalidDataException($"{path}: num_attention_heads ({heads}) must be a multiple of num_key_value_heads ({kvHeads}).");
        var decoder = new DecoderConfig(vocab, hidden, layers, heads, intermediate, maxSeqLen, ropeTheta, eps)
        {
            KvHeads = kvHeads,
            TieEmbeddings = tie,
            RopeScaling = ReadRopeScaling(path, root),
        };
        try
        {
            decoder.Validate();
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
        return new HfConfig(architectureName, architecture, decoder);
    }

    private static string ReadArchitectureName(string path, JsonElement root)
    {
        if (!root.TryGetProperty("architectures", out var list) || list.ValueKind != JsonValueKind.Array || list.GetArrayLength() == 0
            || list[0].ValueKind != JsonValueKind.String)
        {
            throw new InvalidDataException(
                $"{path}: 'architectures' must be a non-empty list of names; supported: {string.Join(", ", SupportedArchitectures)}.");
        }
        return list[0].GetString()!;
    }

    /// <summary>
    /// rope_scaling: null, or {"rope_type" (older files: "type"): "linear", "factor"} or {"rope_type": "llama3", "factor",
    /// "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}; "default" means none. Other types are
    /// refused by name.
    /// </summary>
    private static RopeScaling? ReadRopeScaling(string path, JsonElement root)
    {
        if (!root.TryGetProperty("rope_scaling", out var scaling) || scaling.ValueKind == JsonValueKind.Null) return null;
        if (scaling.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{path}: rope_scaling must be an object or null, got {scaling.GetRawText()}.");
        string? type = null;
        foreach (var key in new[] { "rope_type", "type" })
        {
            if (scaling.TryGetProperty(key, out var value) && value.ValueKind == JsonValueKind.String) type = value.GetString();
            if (type is not null) break;
        }
        if (type is null) throw new InvalidDataException($"{path}: rope_scaling has no 'rope_type' (or 'type').");
        if (type == "default") return null;
        if (type is not (RopeScaling.Linear or RopeScaling.Llama3))
            throw new NotSupportedException($"{path}: rope_scaling type '{type}' is not supported (only {RopeScaling.Linear}, {RopeScaling.Llama3}).");
        double factor = OptionalDouble(path, scaling, "factor") ?? throw new InvalidDataException($"{path}: rope_scaling is missing 'factor'.");
        var result = type == RopeScaling.Linear
            ? new RopeScaling(type, factor)
            : new RopeScaling(type, factor,
                OptionalDouble(path, scaling, "low_freq_factor") ?? throw new InvalidDataException($"{path}: rope_scaling is missing 'low_freq_factor'."),
                OptionalDouble(path, scaling, "high_freq_factor") ?? throw new InvalidDataException($"{path}: rope_scaling is missing 'high_freq_factor'."),
                OptionalInt(path, scaling, "original_max_position_embeddings")
                    ?? throw new InvalidDataException($"{path}: rope_scaling is missing 'original_max_position_embeddings'."));
        try
        {
            result.Validate();
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
        return result;
    }

    /// <summary>Options that change the forward pass in ways the decoder does not implement.</summary>
    private static void RefuseUnsupported(string path, JsonElement root, int hidden, int heads)
    {
        if (OptionalInt(path, root, "head_dim") is { } headDim && headDim != hidden / heads)
            throw new NotSupportedException($"{path}: head_dim {headDim} differs from hidden_size / num_attention_heads = {hidden / heads}; not supported.");
        if (root.TryGetProperty("hidden_act", out var act) && act.ValueKind != JsonValueKind.Null && act.GetString() != "silu")
            throw new NotSupportedException($"{path}: hidden_act '{act}' is not supported (only silu).");
        foreach (var bias in new[] { "attention_bias", "mlp_bias" })
        {
            if (OptionalBool(path, root, bias) == true) throw new NotSupportedException($"{path}: {bias} = true is not supported (bias-free projections only).");
        }
        if (OptionalDouble(path, root, "partial_rotary_factor") is { } partial && partial != 1.0)
            throw new NotSupportedException($"{path}: partial_rotary_factor {partial.ToString(CultureInfo.InvariantCulture)} is not supported (only 1.0).");
    }

    private static int RequiredInt(string path, JsonElement root, string name) =>
        OptionalInt(path, root, name) ?? throw new InvalidDataException($"{path}: missing required field '{name}'.");

    private static int? OptionalInt(string path, JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out int result))
            throw new InvalidDataException($"{path}: field '{name}' must be an integer, got {value.GetRawText()}.");
        return result;
    }

    private static double? OptionalDouble(string path, JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind != JsonValueKind.Number) throw new InvalidDataException($"{path}: field '{name}' must be a number, got {value.GetRawText()}.");
        return value.GetDouble();
    }

    private static bool? OptionalBool(string path, JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new InvalidDataException($"{path}: field '{name}' must be true or false, got {value.GetRawText()}."),
        };
    }
}
