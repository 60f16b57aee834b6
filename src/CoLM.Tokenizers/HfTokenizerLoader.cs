using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace CoLM.Tokenizers;

/// <summary>
/// Loads a tokenizer from a Hugging Face model folder: tokenizer.json with a byte-level BPE model
/// (as GPT-2, CodeGen and Phi-2 use) through Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/>,
/// with special tokens and padding side from tokenizer_config.json and special_tokens_map.json.
/// With add_prefix_space the encoder prepends a space as Hugging Face does, and, as there, the
/// decoder keeps it.
/// </summary>
public static class HfTokenizerLoader
{
    public const string TokenizerJson = "tokenizer.json";
    public const string TokenizerConfigJson = "tokenizer_config.json";
    public const string SpecialTokensMapJson = "special_tokens_map.json";
    public const string SentencePieceModel = "tokenizer.model";

    // GPT-2's pre-tokenization pattern, which the ByteLevel pre-tokenizer applies when use_regex is on.
    private const string Gpt2Pattern =
        @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    public static HfTokenizer Load(string modelDir)
    {
        ArgumentNullException.ThrowIfNull(modelDir);
        if (!Directory.Exists(modelDir))
        {
            throw new DirectoryNotFoundException($"tokenizer folder not found: {modelDir}");
        }

        var config = ReadOptionalObject(Path.Combine(modelDir, TokenizerConfigJson));
        var specialMap = ReadOptionalObject(Path.Combine(modelDir, SpecialTokensMapJson));
        var tokenizerPath = Path.Combine(modelDir, TokenizerJson);
        var sentencePiecePath = Path.Combine(modelDir, SentencePieceModel);

        // Llama folders ship both; the SentencePiece model is the original, so it wins.
        if (File.Exists(sentencePiecePath))
        {
            return LoadLlamaSentencePiece(sentencePiecePath, config, specialMap);
        }

        if (!File.Exists(tokenizerPath))
        {
            throw new FileNotFoundException($"neither {TokenizerJson} nor {SentencePieceModel} in {modelDir}", tokenizerPath);
        }

        var tokenizerJson = ReadObject(tokenizerPath);
        var model = tokenizerJson["model"] as JsonObject
            ?? throw new InvalidDataException($"{tokenizerPath}: no \"model\" object");
        var type = model["type"]?.GetValue<string>();
        if (type != "BPE")
        {
            throw new NotSupportedException(
                $"{tokenizerPath}: model type \"{type ?? "(missing)"}\" is not supported; only \"BPE\" (byte-level) is");
        }

        return LoadByteLevelBpe(tokenizerPath, tokenizerJson, model, config, specialMap);
    }

    private static HfTokenizer LoadByteLevelBpe(
        string tokenizerPath, JsonObject tokenizerJson, JsonObject model, JsonObject? config, JsonObject? specialMap)
    {
        var (byteLevel, addPrefixSpace, useRegex) = ReadByteLevel(tokenizerPath, tokenizerJson);
        if (!byteLevel)
        {
            throw new NotSupportedException(
                $"{tokenizerPath}: BPE without a ByteLevel pre-tokenizer is not supported; only byte-level BPE (GPT-2, CodeGen, Phi-2) is");
        }

        var vocab = model["vocab"] as JsonObject
            ?? throw new InvalidDataException($"{tokenizerPath}: model has no \"vocab\" object");
        var merges = model["merges"] as JsonArray
            ?? throw new InvalidDataException($"{tokenizerPath}: model has no \"merges\" array");

        var vocabIds = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (token, idNode) in vocab)
        {
            vocabIds[token] = idNode!.GetValue<int>();
        }

        var added = ReadAddedTokens(tokenizerJson, config);
        var notes = new List<string>();
        var (eos, bos, pad, unk) = ResolveSpecials(
            tokenizerPath,
            config,
            specialMap,
            content => added.TryGetValue(content, out var id) || vocabIds.TryGetValue(content, out id) ? id : null,
            notes);
        var paddingSide = ReadPaddingSide(config);

        // Specials the encoder must match as whole tokens: every added token plus the named ones.
        var specials = new Dictionary<string, int>(added, StringComparer.Ordinal);
        foreach (var token in new[] { eos, bos, pad, unk })
        {
            if (token is not null)
            {
                specials[token.Content] = token.Id;
            }
        }

        var vocabSize = Math.Max(vocabIds.Values.DefaultIfEmpty(-1).Max(), specials.Values.DefaultIfEmpty(-1).Max()) + 1;

        // The GPT-2 split when use_regex is on; otherwise the whole text (specials still split out).
        var preTokenizer = new RegexPreTokenizer(
            new Regex(useRegex ? Gpt2Pattern : @"[\s\S]+", RegexOptions.Compiled),
            specials);
        var options = new BpeOptions(vocabIds)
        {
            Merges = MergeLines(tokenizerPath, merges),
            SpecialTokens = specials,
            PreTokenizer = preTokenizer,
            Normalizer = null,
            ByteLevel = true,
        };
        var inner = BpeTokenizer.Create(options);

        return new HfTokenizer(
            inner,
            text => inner.EncodeToIds(addPrefixSpace && !text.StartsWith(' ') ? " " + text : text),
            ids => inner.Decode(ids, considerSpecialTokens: true),
            vocabSize,
            pad,
            bos,
            eos,
            unk,
            paddingSide,
            "byte-level BPE",
            notes);
    }

    private static HfTokenizer LoadLlamaSentencePiece(string modelPath, JsonObject? config, JsonObject? specialMap)
    {
        LlamaTokenizer inner;
        try
        {
            using var stream = File.OpenRead(modelPath);
            inner = LlamaTokenizer.Create(stream, addBeginOfSentence: false, addEndOfSentence: false);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or NotSupportedException
            or Google.Protobuf.InvalidProtocolBufferException)
        {
            throw new InvalidDataException($"{modelPath}: not a SentencePiece BPE model Microsoft.ML.Tokenizers can load: {e.Message}", e);
        }

        var notes = new List<string>();
        var vocab = inner.Vocabulary;
        var (eos, bos, pad, unk) = ResolveSpecials(
            modelPath,
            config,
            specialMap,
            content => vocab.TryGetValue(content, out var id) ? id : null,
            notes,
            defaults: (new SpecialToken(inner.EndOfSentenceToken, inner.EndOfSentenceId),
                new SpecialToken(inner.BeginningOfSentenceToken, inner.BeginningOfSentenceId),
                new SpecialToken(inner.UnknownToken, inner.UnknownId)));

        return new HfTokenizer(
            inner,
            text => inner.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false),
            ids => inner.Decode(ids, considerSpecialTokens: true),
            vocab.Values.DefaultIfEmpty(-1).Max() + 1,
            pad,
            bos,
            eos,
            unk,
            ReadPaddingSide(config),
            "Llama SentencePiece BPE",
            notes);
    }

    /// <summary>
    /// eos, bos, pad and unk from tokenizer_config.json, then special_tokens_map.json, then the model's
    /// own (when it names them); bos and pad fall back to eos, with a note.
    /// </summary>
    private static (SpecialToken Eos, SpecialToken Bos, SpecialToken Pad, SpecialToken? Unk) ResolveSpecials(
        string modelPath,
        JsonObject? config,
        JsonObject? specialMap,
        Func<string, int?> idOf,
        List<string> notes,
        (SpecialToken Eos, SpecialToken Bos, SpecialToken Unk)? defaults = null)
    {
        SpecialToken? Special(string key)
        {
            foreach (var (obj, file) in new[] { (config, TokenizerConfigJson), (specialMap, SpecialTokensMapJson) })
            {
                var content = TokenContent(obj?[key]);
                if (content is not null)
                {
                    var id = idOf(content) ?? throw new InvalidDataException(
                        $"{file}: {key} \"{content}\" is neither an added token nor in the vocabulary of {modelPath}");
                    return new SpecialToken(content, id);
                }
            }

            return null;
        }

        var eos = Special("eos_token") ?? defaults?.Eos ?? throw new InvalidDataException(
            $"no eos_token in {TokenizerConfigJson} or {SpecialTokensMapJson} for {modelPath}");
        var bos = Special("bos_token") ?? defaults?.Bos;
        if (bos is null)
        {
            bos = eos;
            notes.Add($"bos_token not set; using eos_token \"{eos.Content}\" as bos");
        }

        var pad = Special("pad_token");
        if (pad is null)
        {
            pad = eos;
            notes.Add($"pad_token not set; using eos_token \"{eos.Content}\" as pad");
        }

        return (eos, bos, pad, Special("unk_token") ?? defaults?.Unk);
    }

    private static (bool ByteLevel, bool AddPrefixSpace, bool UseRegex) ReadByteLevel(string path, JsonObject tokenizerJson)
    {
        var pre = tokenizerJson["pre_tokenizer"] as JsonObject;
        var preType = pre?["type"]?.GetValue<string>();
        if (preType == "ByteLevel")
        {
            return (true, pre!["add_prefix_space"]?.GetValue<bool>() ?? false, pre["use_regex"]?.GetValue<bool>() ?? true);
        }

        if (preType is not null)
        {
            throw new NotSupportedException(
                $"{path}: pre_tokenizer type \"{preType}\" is not supported; only a plain \"ByteLevel\" pre-tokenizer is");
        }

        var decoderType = (tokenizerJson["decoder"] as JsonObject)?["type"]?.GetValue<string>();
        return (decoderType == "ByteLevel", false, true);
    }

    private static Dictionary<string, int> ReadAddedTokens(JsonObject tokenizerJson, JsonObject? config)
    {
        var added = new Dictionary<string, int>(StringComparer.Ordinal);
        if (tokenizerJson["added_tokens"] is JsonArray list)
        {
            foreach (var item in list)
            {
                if (item is JsonObject token && token["content"]?.GetValue<string>() is { } content && token["id"] is { } id)
                {
                    added[content] = id.GetValue<int>();
                }
            }
        }

        if (config?["added_tokens_decoder"] is JsonObject decoder)
        {
            foreach (var (idText, token) in decoder)
            {
                if (TokenContent(token) is { } content && int.TryParse(idText, out var id))
                {
                    added.TryAdd(content, id);
                }
            }
        }

        return added;
    }

    private static List<string> MergeLines(string path, JsonArray merges)
    {
        var lines = new List<string>(merges.Count);
        foreach (var merge in merges)
        {
            // Older files write "a b", newer ones ["a", "b"].
            switch (merge)
            {
                case JsonValue value when value.TryGetValue<string>(out var pair):
                    lines.Add(pair);
                    break;
                case JsonArray { Count: 2 } pair:
                    lines.Add(pair[0]!.GetValue<string>() + " " + pair[1]!.GetValue<string>());
                    break;
                default:
                    throw new InvalidDataException($"{path}: unreadable merge entry {merge?.ToJsonString()}");
            }
        }

        return lines;
    }

    private static PaddingSide ReadPaddingSide(JsonObject? config)
    {
        var side = config?["padding_side"]?.GetValue<string>();
        return side switch
        {
            null or "right" => PaddingSide.Right,
            "left" => PaddingSide.Left,
            _ => throw new InvalidDataException($"{TokenizerConfigJson}: padding_side \"{side}\" is neither \"left\" nor \"right\""),
        };
    }

    /// <summary>A special token written as a string or as an object with "content"; null when absent.</summary>
    private static string? TokenContent(JsonNode? node) => node switch
    {
        JsonValue value when value.TryGetValue<string>(out var text) => text,
        JsonObject obj => obj["content"]?.GetValue<string>(),
        _ => null,
    };

    private static JsonObject ReadObject(string path)
    {
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) as JsonObject
                ?? throw new InvalidDataException($"{path}: not a JSON object");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: invalid JSON: {e.Message}", e);
        }
    }

    private static JsonObject? ReadOptionalObject(string path) => File.Exists(path) ? ReadObject(path) : null;
}
