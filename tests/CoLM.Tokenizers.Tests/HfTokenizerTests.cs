using System.Text;
using System.Text.Json.Nodes;
using Xunit;

namespace CoLM.Tokenizers.Tests;

public sealed class HfTokenizerTests
{
    private static JsonObject Phi2StyleConfig() => new()
    {
        ["bos_token"] = "<|endoftext|>",
        ["eos_token"] = new JsonObject { ["content"] = "<|endoftext|>", ["lstrip"] = false },
        ["unk_token"] = "<|endoftext|>",
    };

    public static TheoryData<string> RoundTripTexts => new()
    {
        "12+7=19",
        "naïve café 東京 🙂",
        "the   quick\t\tbrown  \n\n fox\r\n",
        "   leading and trailing   ",
        "\t",
        "\n\n\n",
        "Ünïcödé — “quotes” ∑ 𝔘 👩‍👩‍👧",
        "mixed 123 456789 0.5e-3 in the thin line",
        "x",
    };

    [Theory]
    [MemberData(nameof(RoundTripTexts))]
    public void Round_trip_is_exact(string text)
    {
        using var folder = TinyBpeFolder.Create(Phi2StyleConfig());
        var tokenizer = HfTokenizerLoader.Load(folder.Path);

        var ids = tokenizer.Encode(text);

        Assert.All(ids, id => Assert.InRange(id, 0, tokenizer.VocabSize - 1));
        Assert.Equal(text, tokenizer.Decode(ids));
    }

    [Fact]
    public void Merges_arrays_format_round_trips_too()
    {
        using var folder = TinyBpeFolder.Create(Phi2StyleConfig(), TinyBpeFolder.TokenizerJson(mergesAsArrays: true));
        var tokenizer = HfTokenizerLoader.Load(folder.Path);

        Assert.Equal("the the 12+7=19", tokenizer.Decode(tokenizer.Encode("the the 12+7=19")));
        Assert.Equal(2, tokenizer.Encode("the the").Length);
    }

    [Fact]
    public void Merges_are_applied()
    {
        using var folder = TinyBpeFolder.Create(Phi2StyleConfig());
        var tokenizer = HfTokenizerLoader.Load(folder.Path);

        var ids = tokenizer.Encode("the the");

        Assert.True(ids.Length < Encoding.UTF8.GetByteCount("the the"), $"{ids.Length} ids");
        Assert.Equal(2, ids.Length); // "the", "Ġthe"
        Assert.Equal(3, tokenizer.Encode("12+19").Length); // "12", "+", "19"
    }

    [Fact]
    public void Unmerged_bytes_map_to_byte_symbols()
    {
        using var folder = TinyBpeFolder.Create(Phi2StyleConfig());
        var tokenizer = HfTokenizerLoader.Load(folder.Path);

        // Byte symbols take ids 0..255 in byte order, so an unmerged byte's id is the byte itself.
        Assert.Equal(Encoding.UTF8.GetBytes("é🙂").Select(b => (int)b).ToArray(), tokenizer.Encode("é🙂"));
    }

    [Fact]
    public void Specials_come_from_tokenizer_config()
    {
        var config = new JsonObject
        {
            ["bos_token"] = "<s>",
            ["eos_token"] = new JsonObject { ["content"] = "</s>", ["special"] = true },
            ["pad_token"] = "<pad>",
            ["unk_token"] = new JsonObject { ["content"] = "<unk>" },
            ["padding_side"] = "left",
        };
        using var folder = TinyBpeFolder.Create(config);
        var tokenizer = HfTokenizerLoader.Load(folder.Path);
        var added = IdsOfAddedTokens();

        Assert.Equal(added["<s>"], tokenizer.BosId);
        Assert.Equal(added["</s>"], tokenizer.EosId);
        Assert.Equal(added["<pad>"], tokenizer.PadId);
        Assert.Equal(added["<unk>"], tokenizer.Unk!.Id);
        Assert.Equal(PaddingSide.Left, tokenizer.PaddingSide);
        Assert.Empty(tokenizer.Notes);
        Assert.Equal(added.Values.Max() + 1, tokenizer.VocabSize);
    }

    [Fact]
    public void Specials_fall_back_to_special_tokens_map()
    {
        using var folder = TinyBpeFolder.Create(config: null);
        folder.Write("special_tokens_map.json", new JsonObject { ["eos_token"] = "</s>", ["bos_token"] = "<s>", ["pad_token"] = "<pad>" });
        var tokenizer = HfTokenizerLoader.Load(folder.Path);
        var added = IdsOfAddedTokens();

        Assert.Equal(added["</s>"], tokenizer.EosId);
        Assert.Equal(added["<s>"], tokenizer.BosId);
        Assert.Equal(added["<pad>"], tokenizer.PadId);
        Assert.Equal(PaddingSide.Right, tokenizer.PaddingSide);
    }

    [Fact]
    public void Pad_falls_back_to_eos_and_says_so()
    {
        using var folder = TinyBpeFolder.Create(Phi2StyleConfig());
        var tokenizer = HfTokenizerLoader.Load(folder.Path);

        Assert.Equal(tokenizer.EosId, tokenizer.PadId);
        Assert.Equal(IdsOfAddedTokens()["<|endoftext|>"], tokenizer.EosId);
        Assert.Contains(tokenizer.Notes, note => note.Contains("pad_token", StringComparison.Ordinal) && note.Contains("eos", StringComparison.Ordinal));
        Assert.Equal(PaddingSide.Right, tokenizer.PaddingSide);
    }

    [Fact]
    public void Special_tokens_in_text_are_single_ids_and_decode_drops_pad_bos_eos()
    {
        var config = new JsonObject { ["bos_token"] = "<s>", ["eos_token"] = "</s>", ["pad_token"] = "<pad>" };
        using var folder = TinyBpeFolder.Create(config);
        var tokenizer = HfTokenizerLoader.Load(folder.Path);

        var ids = tokenizer.Encode("in</s>");
        Assert.Equal(tokenizer.EosId, ids[^1]);
        Assert.Equal(2, ids.Length);

        int[] framed = [tokenizer.BosId, .. tokenizer.Encode("the 12"), tokenizer.EosId, tokenizer.PadId, tokenizer.PadId];
        Assert.Equal("the 12", tokenizer.Decode(framed));

        // Added tokens other than pad/bos/eos stay visible.
        Assert.Equal("<|endoftext|>x", tokenizer.Decode(tokenizer.Encode("<|endoftext|>x")));
    }

    [Fact]
    public void Empty_text_encodes_to_nothing()
    {
        using var folder = TinyBpeFolder.Create(Phi2StyleConfig());
        var tokenizer = HfTokenizerLoader.Load(folder.Path);

        Assert.Empty(tokenizer.Encode(string.Empty));
        Assert.Equal(string.Empty, tokenizer.Decode([]));
    }

    [Fact]
    public void Out_of_range_id_is_refused()
    {
        using var folder = TinyBpeFolder.Create(Phi2StyleConfig());
        var tokenizer = HfTokenizerLoader.Load(folder.Path);

        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([tokenizer.VocabSize]));
    }

    [Fact]
    public void Unknown_model_type_is_refused_naming_file_and_type()
    {
        using var folder = TinyBpeFolder.Create(Phi2StyleConfig(), TinyBpeFolder.TokenizerJson(modelType: "WordPiece"));

        var error = Assert.Throws<NotSupportedException>(() => HfTokenizerLoader.Load(folder.Path));

        Assert.Contains("tokenizer.json", error.Message, StringComparison.Ordinal);
        Assert.Contains("\"WordPiece\"", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Non_byte_level_pre_tokenizer_is_refused()
    {
        var json = TinyBpeFolder.TokenizerJson();
        json["pre_tokenizer"] = new JsonObject { ["type"] = "Metaspace" };
        using var folder = TinyBpeFolder.Create(Phi2StyleConfig(), json);

        var error = Assert.Throws<NotSupportedException>(() => HfTokenizerLoader.Load(folder.Path));

        Assert.Contains("Metaspace", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_eos_is_refused()
    {
        using var folder = TinyBpeFolder.Create(new JsonObject { ["bos_token"] = "<s>" });

        var error = Assert.Throws<InvalidDataException>(() => HfTokenizerLoader.Load(folder.Path));

        Assert.Contains("eos_token", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Special_token_missing_from_vocabulary_is_refused()
    {
        using var folder = TinyBpeFolder.Create(new JsonObject { ["eos_token"] = "<|im_end|>" });

        var error = Assert.Throws<InvalidDataException>(() => HfTokenizerLoader.Load(folder.Path));

        Assert.Contains("<|im_end|>", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_tokenizer_json_is_refused()
    {
        using var folder = new TinyBpeFolder();

        Assert.Throws<FileNotFoundException>(() => HfTokenizerLoader.Load(folder.Path));
    }

    private static Dictionary<string, int> IdsOfAddedTokens()
    {
        var result = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var token in TinyBpeFolder.TokenizerJson()["added_tokens"]!.AsArray())
        {
            result[token!["content"]!.GetValue<string>()] = token["id"]!.GetValue<int>();
        }

        return result;
    }
}
