using System.Text.Json;
using System.Text.Json.Nodes;
using CoLM.Model.SafeTensors;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CoLM.Model.Peft;

/// <summary>
/// LoRA weights as a Hugging Face PEFT adapter folder: adapter_config.json plus
/// adapter_model.safetensors with PEFT's key names, e.g.
/// base_model.model.model.layers.3.self_attn.v_proj.lora_A.weight (r, in) and .lora_B.weight (out, r),
/// so PEFT's PeftModel.from_pretrained loads it onto the matching LlamaForCausalLM (or PhiForCausalLM: q_proj, dense, fc1, ...) unchanged.
/// </summary>
public static class PeftAdapter
{
    public const string ConfigFile = "adapter_config.json";
    public const string WeightsFile = "adapter_model.safetensors";

    /// <summary>PEFT's key for one of our LoRA tensors ("layers.0.self_attn.q_proj.lora_A").</summary>
    public static string PeftKey(string name) => $"base_model.model.model.{name}.weight";

    public static void Export(CausalDecoder model, string directory, string? baseModel = null) =>
        Export(model.Lora, model.TrainableParameters().Select(p => (p.Name, (Tensor)p.Parameter)), directory, baseModel);

    /// <summary>Writes an adapter from LoRA tensors named as <see cref="CausalDecoder.TrainableParameters"/> names them (e.g. a snapshot taken earlier).</summary>
    public static void Export(LoraSettings lora, IEnumerable<(string Name, Tensor Tensor)> tensors, string directory, string? baseModel = null)
    {
        Directory.CreateDirectory(directory);
        var config = new JsonObject
        {
            ["peft_type"] = "LORA",
            ["task_type"] = "CAUSAL_LM",
            ["r"] = lora.Rank,
            ["lora_alpha"] = lora.Alpha,
            ["lora_dropout"] = lora.Dropout,
            ["target_modules"] = new JsonArray(lora.Targets.Select(t => (JsonNode)t).ToArray()),
            ["bias"] = "none",
            ["fan_in_fan_out"] = false,
            ["inference_mode"] = true,
            ["init_lora_weights"] = true,
            ["modules_to_save"] = null,
            ["base_model_name_or_path"] = baseModel ?? "",
        };
        var configPath = Path.Combine(directory, ConfigFile);
        File.WriteAllText(configPath + ".partial", config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        File.Move(configPath + ".partial", configPath, overwrite: true);
        SafeTensorsWriter.Write(Path.Combine(directory, WeightsFile), tensors.Select(t => (PeftKey(t.Name), t.Tensor)));
    }

    /// <summary>
    /// Loads a PEFT LoRA adapter into <paramref name="model"/>'s LoRA tensors (to continue
    /// training or to evaluate). Rank, alpha and targets must match the model's LoRA settings,
    /// and every LoRA tensor must be present with its shape; anything else is refused by name.
    /// </summary>
    public static void Import(CausalDecoder model, string directory)
    {
        var configPath = Path.Combine(directory, ConfigFile);
        if (!File.Exists(configPath)) throw new PeftAdapterException(configPath, "not found");
        JsonNode config;
        try
        {
            config = JsonNode.Parse(File.ReadAllText(configPath)) ?? throw new JsonException("empty");
        }
        catch (JsonException e)
        {
            throw new PeftAdapterException(configPath, $"not valid JSON: {e.Message}");
        }
        string? type = config["peft_type"]?.GetValue<string>();
        if (type != "LORA") throw new PeftAdapterException(configPath, $"peft_type '{type}' is not LORA");
        var lora = model.Lora;
        int rank = config["r"]?.GetValue<int>() ?? -1;
        double alpha = config["lora_alpha"]?.GetValue<double>() ?? double.NaN;
        var targets = config["target_modules"]?.AsArray().Select(t => t!.GetValue<string>()).Order().ToArray() ?? [];
        if (rank != lora.Rank) throw new PeftAdapterException(configPath, $"r = {rank}, this model's LoRA rank is {lora.Rank}");
        if (Math.Abs(alpha - lora.Alpha) > 1e-9) throw new PeftAdapterException(configPath, $"lora_alpha = {alpha}, this model's is {lora.Alpha}");
        if (!targets.SequenceEqual(lora.Targets.Order()))
            throw new PeftAdapterException(configPath, $"target_modules [{string.Join(", ", targets)}] differ from this model's [{string.Join(", ", lora.Targets.Order())}]");

        var weightsPath = Path.Combine(directory, WeightsFile);
        if (!File.Exists(weightsPath)) throw new PeftAdapterException(weightsPath, "not found");
        using var file = SafeTensorsFile.Open(weightsPath);
        var expected = model.TrainableParameters().ToDictionary(p => PeftKey(p.Name), p => p.Parameter);
        var extra = file.Tensors.Select(t => t.Name).Where(n => !expected.ContainsKey(n)).ToArray();
        if (extra.Length > 0) throw new PeftAdapterException(weightsPath, $"tensors this model has no place for: {string.Join(", ", extra.Take(5))}");
        var loaded = new List<(Parameter Target, Tensor Value)>();
        try
        {
            foreach (var (key, parameter) in expected)
            {
                var info = file.Tensors.FirstOrDefault(t => t.Name == key)
                    ?? throw new PeftAdapterException(weightsPath, $"missing tensor {key}");
                if (!info.Shape.SequenceEqual(parameter.shape))
                    throw new PeftAdapterException(weightsPath, $"{key} has shape [{string.Join(",", info.Shape)}], this model needs [{string.Join(",", parameter.shape)}]");
                loaded.Add((parameter, file.ReadTensor(key, parameter.dtype)));
            }
            // Everything validated before the live weights change.
            using var _ = no_grad();
            foreach (var (target, value) in loaded) target.copy_(value);
        }
        finally
        {
            foreach (var (_, value) in loaded) value.Dispose();
        }
    }
}

public sealed class PeftAdapterException(string path, string problem) : Exception($"{path}: {problem}");
