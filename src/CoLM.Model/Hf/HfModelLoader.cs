using System.Text.Json;
using CoLM.Model.Phi;
using CoLM.Model.SafeTensors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CoLM.Model.Hf;

/// <summary>
/// Loads a Hugging Face model folder (config.json, and model.safetensors or model.safetensors.index.json with
/// its shards; F32, F16 or BF16 tensors) into a <see cref="LlamaDecoder"/> with fresh LoRA adapters.
/// </summary>
/// <remarks>
/// The decoder is built as usual (random base weights, cheap next to reading a checkpoint) and every frozen
/// parameter is then overwritten, in fp32, under no_grad; the model is finally cast to the compute dtype.
/// Every expected tensor must be present with its exact shape, and no other tensor may be (bar the rotary
/// inv_freq buffers some older Llama checkpoints carry, which are derived from the config). Phi3's fused
/// qkv_proj (rows q, k, v) and gate_up_proj (rows gate, up) are split into the separate projections, so LoRA
/// can target each, e.g. v_proj alone; the LoRA targets "qkv_proj" and "gate_up_proj" stand for their parts.
/// </remarks>
public static class HfModelLoader
{
    /// <summary>Loads <paramref name="modelDir"/>; LoRA A matrices are drawn from <paramref name="loraSeed"/>, B matrices start at zero.</summary>
    public static LlamaDecoder Load(string modelDir, LoraSettings lora, ScalarType computeDType = ScalarType.Float32, long loraSeed = 0)
    {
        ArgumentNullException.ThrowIfNull(modelDir);
        ArgumentNullException.ThrowIfNull(lora);
        if (computeDType is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16))
            throw new ArgumentException($"Compute dtype must be Float32, Float16 or BFloat16, got {computeDType}.", nameof(computeDType));

        var config = HfConfig.Read(modelDir);
        if (config.Architecture == HfArchitecture.Phi3) lora = ExpandFusedTargets(lora);
        using var weights = ShardedSafeTensors.Open(modelDir);
        var model = new LlamaDecoder(config.Decoder, lora, loraSeed);
        try
        {
            CopyWeights(model, config, weights, modelDir);
            model.CastBaseWeights(computeDType); // LoRA A and B stay fp32
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Any supported folder as a <see cref="CausalDecoder"/>: PhiForCausalLM through <see cref="PhiLoader"/>, the Llama
    /// family (Llama, Mistral, Phi3) through <see cref="Load"/>. Frozen weights in <paramref name="computeDType"/>, LoRA in fp32.
    /// </summary>
    public static CausalDecoder LoadDecoder(string modelDir, LoraSettings lora, ScalarType computeDType = ScalarType.Float32, long loraSeed = 0) =>
        IsPhi(modelDir) ? PhiLoader.Load(modelDir, lora, loraSeed, computeDType) : Load(modelDir, lora, computeDType, loraSeed);

    /// <summary>Whether config.json names PhiForCausalLM (which <see cref="HfConfig"/> does not read; <see cref="PhiLoader"/> does).</summary>
    public static bool IsPhi(string modelDir) => ArchitectureName(modelDir) == PhiLoader.Architecture;

    /// <summary>Width of the last layer's v_proj output (the sketched LoRA B has this many rows).</summary>
    public static int ValueWidth(string modelDir) =>
        IsPhi(modelDir) ? PhiLoader.ReadConfig(modelDir).KeyValueDim : HfConfig.Read(modelDir).Decoder.KvDim;

    /// <summary>The folder's config.json torch_dtype ("float32", "bfloat16", ...), or null when absent or unreadable.</summary>
    public static string? StoredDtype(string modelDir) => ConfigString(modelDir, root =>
        root.TryGetProperty("torch_dtype", out var dtype) && dtype.ValueKind == JsonValueKind.String ? dtype.GetString() : null);

    /// <summary>architectures[0] of config.json, or null when that cannot be read (the loaders then say why).</summary>
    private static string? ArchitectureName(string modelDir) => ConfigString(modelDir, root =>
        root.TryGetProperty("architectures", out var list) && list.ValueKind == JsonValueKind.Array && list.GetArrayLength() > 0
            && list[0].ValueKind == JsonValueKind.String ? list[0].GetString() : null);

    private static string? ConfigString(string modelDir, Func<JsonElement, string?> pick)
    {
        string path = Path.Combine(modelDir, HfConfig.FileName);
        if (!File.Exists(path)) return null;
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(path));
            return document.RootElement.ValueKind == JsonValueKind.Object ? pick(document.RootElement) : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Phi3's fused module names as LoRA targets: qkv_proj = q_proj, k_proj, v_proj; gate_up_proj = gate_proj, up_proj.</summary>
    internal static LoraSettings ExpandFusedTargets(LoraSettings lora)
    {
        var targets = new List<string>();
        foreach (var target in lora.Targets)
        {
            string[] parts = target switch
            {
                "qkv_proj" => ["q_proj", "k_proj", "v_proj"],
                "gate_up_proj" => ["gate_proj", "up_proj"],
                _ => [target],
            };
            foreach (var part in parts)
            {
                if (!targets.Contains(part)) targets.Add(part);
            }
        }
        return lora with { Targets = targets };
    }

    /// <summary>One stored tensor and the decoder parameters it fills: row blocks, in order, each (rows, cols) of the stored (sum rows, cols).</summary>
    private sealed record Slot(string Name, long[] Shape, IReadOnlyList<(Parameter Target, long Rows)> Parts);

    private static void CopyWeights(LlamaDecoder model, HfConfig config, ShardedSafeTensors weights, string modelDir)
    {
        var slots = ExpectedTensors(model, config);
        var expected = slots.Select(s => s.Name).ToHashSet();
        var unexpected = weights.Names.Where(n => !expected.Contains(n) && !n.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal).ToList();
        if (unexpected.Count > 0)
        {
            throw new InvalidDataException(
                $"{modelDir}: unexpected tensor(s) for {config.ArchitectureName}: {string.Join(", ", unexpected.Take(10))}"
                + (unexpected.Count > 10 ? $" and {unexpected.Count - 10} more" : "") + $" (in {FileOf(weights, unexpected[0], modelDir)}).");
        }

        using var noGrad = no_grad();
        foreach (var slot in slots)
        {
            if (!weights.Contains(slot.Name))
                throw new InvalidDataException($"{modelDir}: tensor '{slot.Name}' is missing from {StoreName(modelDir)}.");
            var info = weights.Info(slot.Name);
            if (!info.Shape.SequenceEqual(slot.Shape))
            {
                throw new InvalidDataException(
                    $"{FileOf(weights, slot.Name, modelDir)}: tensor '{slot.Name}' has shape [{string.Join(", ", info.Shape)}], "
                    + $"expected [{string.Join(", ", slot.Shape)}] for this {HfConfig.FileName}.");
            }
            if (info.DType is not (SafeTensorDType.F32 or SafeTensorDType.F16 or SafeTensorDType.BF16))
                throw new InvalidDataException($"{FileOf(weights, slot.Name, modelDir)}: tensor '{slot.Name}' is {info.DType}; expected F32, F16 or BF16.");

            using var scope = NewDisposeScope();
            var source = weights.ReadTensor(slot.Name, ScalarType.Float32);
            long row = 0;
            foreach (var (target, rows) in slot.Parts)
            {
                target.copy_(source.narrow(0, row, rows));
                row += rows;
            }
        }
    }

    private static List<Slot> ExpectedTensors(LlamaDecoder model, HfConfig config)
    {
        var parameters = model.named_parameters().Where(p => !p.parameter.requires_grad).ToDictionary(p => p.name, p => p.parameter);
        Parameter P(string name) => parameters.TryGetValue(name, out var p)
            ? p
            : throw new InvalidOperationException($"The decoder has no parameter '{name}'.");
        Slot Single(string hfName, string name) => new(hfName, P(name).shape, [(P(name), P(name).shape[0])]);
        Slot Fused(string hfName, params string[] names)
        {
            var parts = names.Select(n => (P(n), P(n).shape[0])).ToList();
            return new Slot(hfName, [parts.Sum(p => p.Item2), P(names[0]).shape[1]], parts);
        }

        var d = config.Decoder;
        var embed = P("embed_tokens.weight");
        var slots = new List<Slot> { Single("model.embed_tokens.weight", "embed_tokens.weight") };
        for (int i = 0; i < d.Layers; i++)
        {
            string l = $"layers.{i}";
            slots.Add(Single($"model.{l}.input_layernorm.weight", $"{l}.input_layernorm.weight"));
            if (config.Architecture == HfArchitecture.Phi3)
            {
                slots.Add(Fused($"model.{l}.self_attn.qkv_proj.weight",
                    $"{l}.self_attn.q_proj.weight", $"{l}.self_attn.k_proj.weight", $"{l}.self_attn.v_proj.weight"));
            }
            else
            {
                foreach (var p in new[] { "q_proj", "k_proj", "v_proj" })
                    slots.Add(Single($"model.{l}.self_attn.{p}.weight", $"{l}.self_attn.{p}.weight"));
            }
            slots.Add(Single($"model.{l}.self_attn.o_proj.weight", $"{l}.self_attn.o_proj.weight"));
            slots.Add(Single($"model.{l}.post_attention_layernorm.weight", $"{l}.post_attention_layernorm.weight"));
            if (config.Architecture == HfArchitecture.Phi3)
            {
                slots.Add(Fused($"model.{l}.mlp.gate_up_proj.weight", $"{l}.mlp.gate_proj.weight", $"{l}.mlp.up_proj.weight"));
            }
            else
            {
                slots.Add(Single($"model.{l}.mlp.gate_proj.weight", $"{l}.mlp.gate_proj.weight"));
                slots.Add(Single($"model.{l}.mlp.up_proj.weight", $"{l}.mlp.up_proj.weight"));
            }
            slots.Add(Single($"model.{l}.mlp.down_proj.weight", $"{l}.mlp.down_proj.weight"));
        }
        slots.Add(Single("model.norm.weight", "norm.weight"));
        if (d.TieEmbeddings)
        {
            // lm_head is the decoder's own copy of the embedding: the one stored table fills both.
            slots.Add(new Slot("model.embed_tokens.weight", embed.shape, [(P("lm_head.weight"), embed.shape[0])]));
        }
        else
        {
            slots.Add(Single("lm_head.weight", "lm_head.weight"));
        }
        return slots;
    }

    private static string StoreName(string modelDir) =>
        File.Exists(Path.Combine(modelDir, ShardedSafeTensors.SingleFileName))
            ? Path.Combine(modelDir, ShardedSafeTensors.SingleFileName)
            : Path.Combine(modelDir, ShardedSafeTensors.IndexFileName);

    private static string FileOf(ShardedSafeTensors weights, string name, string modelDir) =>
        weights.Files.FirstOrDefault(f => f.Contains(name))?.Path ?? StoreName(modelDir);
}
