using System.Text.Json.Nodes;

namespace CoLM.Tokenizers.Tests;

/// <summary>
/// Writes a small byte-level BPE model folder: the 256 byte symbols of GPT-2's byte-to-unicode
/// mapping, a few merges, and added special tokens.
/// </summary>
internal sealed class TinyBpeFolder : IDisposable
{
    public static readonly string[] Merges =
    [
        "t h", "th e", "Ġ the", "i n", "Ġ in", "1 2", "1 9", "Ġ Ġ",
    ];

    public TinyBpeFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "colm-tok-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    /// <summary>GPT-2's reversible map from bytes to printable characters.</summary>
    public static char[] ByteSymbols()
    {
        var symbols = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            var printable = b is >= 33 and <= 126 or >= 161 and <= 172 or >= 174 and <= 255;
            symbols[b] = printable ? (char)b : (char)next++;
        }

        return symbols;
    }

    public static JsonObject TokenizerJson(bool mergesAsArrays = false, string modelType = "BPE")
    {
        var vocab = new JsonObject();
        var id = 0;
        foreach (var symbol in ByteSymbols())
        {
            vocab[symbol.ToString()] = id++;
        }

        var merges = new JsonArray();
        foreach (var merge in Merges)
        {
            var parts = merge.Split(' ');
            vocab[parts[0] + parts[1]] = id++;
            merges.Add(mergesAsArrays ? new JsonArray(parts[0], parts[1]) : JsonValue.Create(merge));
        }

        var added = new JsonArray();
        foreach (var special in new[] { "<|endoftext|>", "<s>", "</s>", "<pad>", "<unk>" })
        {
            added.Add(new JsonObject { ["id"] = id++, ["content"] = special, ["special"] = true });
        }

        return new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = added,
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel" },
            ["model"] = new JsonObject { ["type"] = modelType, ["vocab"] = vocab, ["merges"] = merges },
        };
    }

    public TinyBpeFolder Write(string name, JsonNode content)
    {
        File.WriteAllText(System.IO.Path.Combine(Path, name), content.ToJsonString());
        return this;
    }

    public static TinyBpeFolder Create(JsonObject? config, JsonObject? tokenizerJson = null)
    {
        var folder = new TinyBpeFolder();
        folder.Write("tokenizer.json", tokenizerJson ?? TokenizerJson());
        if (config is not null)
        {
            folder.Write("tokenizer_config.json", config);
        }

        return folder;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
