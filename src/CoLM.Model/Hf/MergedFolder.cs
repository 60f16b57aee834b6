using CoLM.Model.SafeTensors;
using static TorchSharp.torch;

namespace CoLM.Model.Hf;

/// <summary>
/// What the merged-model savers (<see cref="HfModelSaver"/>, <see cref="Phi.PhiSaver"/>) share: the storage dtype
/// check, the folder written under a hidden temporary name and renamed into place when complete (so a crash leaves
/// no half-written model folder, at most a ".name.partial-*" one), and the LoRA merge W + s B A into safetensors.
/// </summary>
internal static class MergedFolder
{
    public static void CheckStorageDType(ScalarType storeAs, string paramName)
    {
        if (storeAs is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16))
            throw new ArgumentException($"Storage dtype must be Float32, Float16 or BFloat16, got {storeAs}.", paramName);
    }

    /// <summary>The torch_dtype value of config.json for a storage dtype.</summary>
    public static string TorchDTypeName(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "float32",
        ScalarType.Float16 => "float16",
        ScalarType.BFloat16 => "bfloat16",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };

    /// <summary>
    /// Creates <paramref name="directory"/> (which must not exist, or be an empty folder) with what
    /// <paramref name="fill"/> writes into the temporary folder whose path it is given.
    /// </summary>
    public static void Write(string directory, Action<string> fill)
    {
        string target = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        CheckTarget(target);
        string parent = Path.GetDirectoryName(target)
            ?? throw new ArgumentException($"Cannot write a model folder at the root '{target}'.", nameof(directory));
        Directory.CreateDirectory(parent);
        string temp = Path.Combine(parent, $".{Path.GetFileName(target)}.partial-{Guid.NewGuid():N}");

        try
        {
            Directory.CreateDirectory(temp);
            fill(temp);
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

    /// <summary>
    /// Writes the model's frozen weights to the safetensors file <paramref name="path"/> in <paramref name="storeAs"/>,
    /// each adapted weight as W + s B A (computed in fp32, then cast). <paramref name="hfName"/> gives a frozen
    /// parameter's Hugging Face name, or null to leave it out. Merged and converted tensors are made on the model's
    /// device and then held on the CPU until written; a weight that needs neither is handed to the writer as it is.
    /// Returns the names written, in order.
    /// </summary>
    public static IReadOnlyList<string> WriteWeights(CausalDecoder model, string path, ScalarType storeAs, Func<string, Tensor, string?> hfName)
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
                if (hfName(name, weight) is not { } stored) continue;

                string module = name.EndsWith(".weight", StringComparison.Ordinal) ? name[..^".weight".Length] : name;
                all.TryGetValue(module + ".lora_A", out var loraA);
                all.TryGetValue(module + ".lora_B", out var loraB);
                if ((loraA is null) != (loraB is null))
                    throw new InvalidOperationException($"'{module}' has only one of lora_A and lora_B.");

                if (loraA is null && weight.dtype == storeAs)
                {
                    tensors.Add((stored, weight));
                    continue;
                }
                using var scope = NewDisposeScope();
                var value = weight.to_type(ScalarType.Float32);
                if (loraA is not null && loraB is not null)
                {
                    // W + s B A in fp32, (out, r) @ (r, in) -> (out, in).
                    value = value.addmm(loraB.to_type(ScalarType.Float32), loraA.to_type(ScalarType.Float32), beta: 1, alpha: (float)scale);
                }
                var converted = value.to_type(storeAs).cpu().contiguous().DetachFromDisposeScope();
                if (!ReferenceEquals(converted, weight)) owned.Add(converted);
                tensors.Add((stored, converted));
            }
            var metadata = new Dictionary<string, string> { ["format"] = "pt" };
            SafeTensorsWriter.Write(path, tensors, metadata);
            return tensors.Select(t => t.Name).ToList();
        }
        finally
        {
            foreach (var tensor in owned) tensor.Dispose();
        }
    }
}
