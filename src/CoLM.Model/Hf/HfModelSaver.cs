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
/// The folder is written under a hidden temporary name beside the target and renamed into place when complete, so a
/// crash leaves no half-written model folder (at most a ".name.partial-*" folder, never the target name).
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
        if (storeAs is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16))
            throw new ArgumentException($"Storage dtype must be Float32, Float16 or BFloat16, got {storeAs}.", nameof(storeAs));

        string target = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        CheckTarget(target);
        string parent = Path.GetDirectoryName(target)
            ?? throw new ArgumentException($"Cannot write a model folder at the root '{target}'.", nameof(directory));
        Directory.CreateDirectory(parent);
        string temp = Path.Combine(parent, $".{Path.GetFileName(target)}.partial-{Guid.NewGuid():N}");

        try
        {
            Directory.CreateDirectory(temp);
            File.WriteAllText(Path.Combine(temp, HfConfig.FileName), ConfigJson(model.Config, storeAs));
            WriteWeights(model, Path.Combine(temp, ShardedSafeTensors.SingleFileName), storeAs);
            CheckTarget(target); // it may have appeared meanwhile
            if (Directory.Exists(target)) Directory.Delete(target); // empty (checked); Directory.Move needs the name free
            Directory.Move(temp, target);
        }
        catch
        {
            try
            {
                if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>The target must be free or an empty folder: never a file, never a folder with content to lose.</summary>
    private static void CheckTarget(string target)
    {
        if (File.Exists(target))
            throw new IOException($"Cannot save the model folder to '{target}': a file with that name exists.");
        if (Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any())
            throw new IOException($"Cannot save the model folder to '{target}': the folder exists and is not empty.");
    }

    private static string TorchDTypeName(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "float32",
        ScalarType.Float16 => "float16",
        ScalarType.BFloat16 => "bfloat16",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };

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
            json.WriteString("torch_dtype", TorchDTypeName(storeAs));
            json.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>
    /// Our parameter names are Hugging Face's without the "model." prefix (lm_head.weight aside). Merged and
    /// converted tensors are made on the model's device and then held on the CPU until written; a weight that needs
    /// neither is handed to the writer as it is.
    /// </summary>
    private static void WriteWeights(LlamaDecoder model, string path, ScalarType storeAs)
    {
        var all = model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        var frozen = model.FrozenParameters();
        double scale = model.Lora.Scale;
        var owned = new List<Tensor>();
        try
        {
            var tensors = new List<(string Name, Tensor Tensor)>(frozen.Count);
            using var noGrad = no_grad();
            foreach (var (name, weight) in frozen)
            {
                if (name == "lm_head.weight" && model.Config.TieEmbeddings)
                {
                    if (!weight.allclose(all["embed_tokens.weight"], rtol: 0, atol: 0))
                        throw new InvalidOperationException("The model has tied embeddings but lm_head.weight differs from embed_tokens.weight.");
                    continue; // transformers ties lm_head to model.embed_tokens.weight
                }
                string hfName = name.StartsWith("lm_head.", StringComparison.Ordinal) ? name : "model." + name;

                string module = name.EndsWith(".weight", StringComparison.Ordinal) ? name[..^".weight".Length] : name;
                all.TryGetValue(module + ".lora_A", out var loraA);
                all.TryGetValue(module + ".lora_B", out var loraB);
                if ((loraA is null) != (loraB is null))
                    throw new InvalidOperationException($"'{module}' has only one of lora_A and lora_B.");

                if (loraA is null && weight.dtype == storeAs)
                {
                    tensors.Add((hfName, weight));
                    continue;
                }
                using var scope = NewDisposeScope();
                var value = weight.to_type(ScalarType.Float32);
                if (loraA is not null && loraB is not null)
                {
                    // W + s B A in fp32, (out, r) @ (r, in) -> (out, in).
                    value = value.addmm(loraB.to_type(ScalarType.Float32), loraA.to_type(ScalarType.Float32), beta: 1, alpha: (float)scale);
                }
                var stored = value.to_type(storeAs).cpu().contiguous().DetachFromDisposeScope();
                if (!ReferenceEquals(stored, weight)) owned.Add(stored);
                tensors.Add((hfName, stored));
            }
            var metadata = new Dictionary<string, string> { ["format"] = "pt" };
            SafeTensorsWriter.Write(path, tensors, metadata);
        }
        finally
        {
            foreach (var tensor in owned) tensor.Dispose();
        }
    }
}
