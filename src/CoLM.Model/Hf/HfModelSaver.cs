using System.Text.Json;
using CoLM.Model.SafeTensors;
using static TorchSharp.torch;

namespace CoLM.Model.Hf;

/// <summary>
/// Saves a <see cref="LlamaDecoder"/> with its LoRA adapters merged into the base weights as a Hugging Face
/// LlamaForCausalLM folder (config.json and model.safetensors) that <see cref="HfModelLoader"/> and transformers load.
/// </summary>
/// <remarks>
/// Each adapted projection is stored as W + s * B A (s = alpha / r), computed in fp32 and then cast to the storage
/// dtype. A model loaded from a Phi3ForCausalLM folder is saved as the equivalent LlamaForCausalLM with separate
/// q/k/v and gate/up projections (the decoder keeps them unfused; the forward pass is the same function).
/// max_position_embeddings is the decoder's MaxSeqLen, which the loader caps at a sliding window where one was set.
/// The folder is written as <see cref="MergedFolder"/> writes one: complete or not at all.
/// </remarks>
public static class HfModelSaver
{
    public const string ArchitectureName = "LlamaForCausalLM";

    /// <summary>
    /// Writes <paramref name="directory"/> (which must not exist, or be an empty folder) with config.json and
    /// model.safetensors holding the merged weights in <paramref name="storeAs"/> (Float32, Float16 or BFloat16).
    /// With tied embeddings no lm_head.weight is written (it is the embedding table).
    /// </summary>
    public static void SaveMerged(LlamaDecoder model, string directory, ScalarType storeAs = ScalarType.Float32)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(directory);
        MergedFolder.CheckStorageDType(storeAs, nameof(storeAs));
        MergedFolder.Write(directory, temp =>
        {
            File.WriteAllText(Path.Combine(temp, HfConfig.FileName), ConfigJson(model.Config, storeAs));
            WriteWeights(model, Path.Combine(temp, ShardedSafeTensors.SingleFileName), storeAs);
        });
    }

    internal static string ConfigJson(DecoderConfig d, ScalarType storeAs)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteStartArray("architectures");
            json.WriteStringValue(ArchitectureName);
            json.WriteEndArray();
            json.WriteString("model_type", "llama");
            json.WriteNumber("hidden_size", d.Dim);
            json.WriteNumber("intermediate_size", d.HiddenDim);
            json.WriteNumber("num_hidden_layers", d.Layers);
            json.WriteNumber("num_attention_heads", d.Heads);
            json.WriteNumber("num_key_value_heads", d.KvHeads);
            json.WriteNumber("head_dim", d.HeadDim);
            json.WriteNumber("rms_norm_eps", d.NormEps);
            json.WriteNumber("rope_theta", d.RopeTheta);
            if (d.RopeScaling is { } scaling)
            {
                json.WriteStartObject("rope_scaling");
                json.WriteString("rope_type", scaling.Type);
                json.WriteNumber("factor", scaling.Factor);
                if (scaling.Type == RopeScaling.Llama3)
                {
                    json.WriteNumber("low_freq_factor", scaling.LowFreqFactor);
                    json.WriteNumber("high_freq_factor", scaling.HighFreqFactor);
                    json.WriteNumber("original_max_position_embeddings", scaling.OriginalMaxPositions);
                }
                json.WriteEndObject();
            }
            else
            {
                json.WriteNull("rope_scaling");
            }
            json.WriteNumber("vocab_size", d.VocabSize);
            json.WriteNumber("max_position_embeddings", d.MaxSeqLen);
            json.WriteBoolean("tie_word_embeddings", d.TieEmbeddings);
            json.WriteString("hidden_act", "silu");
            json.WriteBoolean("attention_bias", false);
            json.WriteBoolean("mlp_bias", false);
            json.WriteString("torch_dtype", MergedFolder.TorchDTypeName(storeAs));
            json.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>Our parameter names are Hugging Face's without the "model." prefix (lm_head.weight aside).</summary>
    private static void WriteWeights(LlamaDecoder model, string path, ScalarType storeAs)
    {
        var embedding = model.named_parameters().First(p => p.name == "embed_tokens.weight").parameter;
        MergedFolder.WriteWeights(model, path, storeAs, (name, weight) =>
        {
            if (name == "lm_head.weight" && model.Config.TieEmbeddings)
            {
                if (!weight.allclose(embedding, rtol: 0, atol: 0))
                    throw new InvalidOperationException("The model has tied embeddings but lm_head.weight differs from embed_tokens.weight.");
                return null; // transformers ties lm_head to model.embed_tokens.weight
            }
            return name.StartsWith("lm_head.", StringComparison.Ordinal) ? name : "model." + name;
        });
    }
}
