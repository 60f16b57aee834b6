using System.Text.Json;
using TorchSharp;

namespace CoLM.Model.SafeTensors;

/// <summary>
/// The weights of a Hugging Face model directory: either one <c>model.safetensors</c>, or
/// <c>model.safetensors.index.json</c> ({"metadata": {...}, "weight_map": {name: shard file}}) plus its shards.
/// Every shard is opened (header validated) up front and every mapped name is checked to exist in its shard.
/// </summary>
public sealed class ShardedSafeTensors : IDisposable
{
    public const string SingleFileName = "model.safetensors";
    public const string IndexFileName = "model.safetensors.index.json";

    private readonly List<SafeTensorsFile> _files;
    private readonly Dictionary<string, SafeTensorsFile> _byName;

    private ShardedSafeTensors(List<SafeTensorsFile> files, Dictionary<string, SafeTensorsFile> byName)
    {
        _files = files;
        _byName = byName;
    }

    /// <summary>Every tensor name (the index's weight_map keys, or all tensors of the single file).</summary>
    public IReadOnlyCollection<string> Names => _byName.Keys;

    /// <summary>The opened files (one, or one per shard).</summary>
    public IReadOnlyList<SafeTensorsFile> Files => _files;

    /// <summary>Whether a tensor of that name exists.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>The header entry of one tensor.</summary>
    public SafeTensorInfo Info(string name) => FileOf(name).Info(name);

    /// <summary>A new CPU tensor (see <see cref="SafeTensorsFile.ReadTensor"/>); the caller disposes it.</summary>
    public torch.Tensor ReadTensor(string name, torch.ScalarType? convertTo = null) => FileOf(name).ReadTensor(name, convertTo);

    /// <summary>Opens <c>model.safetensors</c> if present, else the index and its shards.</summary>
    public static ShardedSafeTensors Open(string modelDirectory)
    {
        ArgumentNullException.ThrowIfNull(modelDirectory);
        if (!Directory.Exists(modelDirectory))
            throw new DirectoryNotFoundException($"{modelDirectory}: model directory does not exist");

        string single = Path.Combine(modelDirectory, SingleFileName);
        if (File.Exists(single))
        {
            var file = SafeTensorsFile.Open(single);
            return new ShardedSafeTensors([file], file.Tensors.ToDictionary(t => t.Name, _ => file, StringComparer.Ordinal));
        }

        string index = Path.Combine(modelDirectory, IndexFileName);
        if (!File.Exists(index))
            throw new FileNotFoundException($"{modelDirectory}: neither {SingleFileName} nor {IndexFileName} is present", index);
        return OpenIndex(modelDirectory, index);
    }

    private static ShardedSafeTensors OpenIndex(string directory, string index)
    {
        var weightMap = ReadWeightMap(index);
        var shards = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
        try
        {
            var byName = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
            foreach (var (name, shard) in weightMap)
            {
                if (!shards.TryGetValue(shard, out var file))
                {
                    string shardPath = Path.Combine(directory, shard);
                    if (!File.Exists(shardPath))
                        throw new SafeTensorsFormatException(index, $"shard '{shard}' (holding '{name}') does not exist at {shardPath}");
                    file = SafeTensorsFile.Open(shardPath);
                    shards.Add(shard, file);
                }
                if (!file.Contains(name))
                    throw new SafeTensorsFormatException(index, $"tensor '{name}' is mapped to shard '{shard}', which has no tensor of that name");
                byName.Add(name, file);
            }
            return new ShardedSafeTensors(shards.Values.ToList(), byName);
        }
        catch
        {
            foreach (var file in shards.Values) file.Dispose();
            throw;
        }
    }

    private static List<(string Name, string Shard)> ReadWeightMap(string index)
    {
        if (new FileInfo(index).Length > SafeTensorsFile.MaxHeaderLength)
            throw new SafeTensorsFormatException(index, $"index is larger than {SafeTensorsFile.MaxHeaderLength} bytes");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllBytes(index));
        }
        catch (JsonException e)
        {
            throw new SafeTensorsFormatException(index, $"index is not valid JSON: {e.Message}");
        }
        catch (ArgumentException e)
        {
            throw new SafeTensorsFormatException(index, $"index is not valid UTF-8 JSON: {e.Message}");
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new SafeTensorsFormatException(index, $"index must be a JSON object, found {root.ValueKind}");
            if (root.TryGetProperty("metadata", out var metadata) && metadata.ValueKind is not (JsonValueKind.Object or JsonValueKind.Null))
                throw new SafeTensorsFormatException(index, $"'metadata' must be an object, found {metadata.ValueKind}");
            if (!root.TryGetProperty("weight_map", out var map))
                throw new SafeTensorsFormatException(index, "missing 'weight_map'");
            if (map.ValueKind != JsonValueKind.Object)
                throw new SafeTensorsFormatException(index, $"'weight_map' must be an object of tensor name to shard file, found {map.ValueKind}");

            var result = new List<(string, string)>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var entry in map.EnumerateObject())
            {
                if (!seen.Add(entry.Name))
                    throw new SafeTensorsFormatException(index, $"'weight_map' names '{entry.Name}' more than once");
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw new SafeTensorsFormatException(index, $"'weight_map' entry '{entry.Name}' must be a shard file name, found {entry.Value.ValueKind}");
                string shard = entry.Value.GetString()!;
                if (shard.Length == 0 || Path.GetFileName(shard) != shard || shard is "." or "..")
                    throw new SafeTensorsFormatException(index, $"'weight_map' entry '{entry.Name}' names shard '{shard}', which is not a plain file name in the model directory");
                result.Add((entry.Name, shard));
            }
            if (result.Count == 0)
                throw new SafeTensorsFormatException(index, "'weight_map' is empty");
            return result;
        }
    }

    public void Dispose()
    {
        foreach (var file in _files) file.Dispose();
    }

    private SafeTensorsFile FileOf(string name) =>
        _byName.TryGetValue(name, out var file) ? file : throw new KeyNotFoundException($"no tensor named '{name}' in the model");
}
