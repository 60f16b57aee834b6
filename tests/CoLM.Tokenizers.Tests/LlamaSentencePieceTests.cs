using System.Text.Json.Nodes;
using Xunit;

namespace CoLM.Tokenizers.Tests;

public sealed class LlamaSentencePieceTests
{
    private static TinyBpeFolder LlamaFolder(JsonObject? config = null)
    {
        var folder = new TinyBpeFolder();
        File.WriteAllBytes(Path.Combine(folder.Path, "tokenizer.model"), TinySentencePieceModel.Build());
        if (config is not null)
        {
            folder.Write("tokenizer_config.json", config);
        }

        return folder;
    }

    public static TheoryData<string> RoundTripTexts => new()
    {
        "12+7=19",
        "naïve café 東京 🙂",
        "the   quick\t\tbrown  \n\n fox",
        "in the thin 12 line",
        "  two leading spaces and trailing  ",
    };

    [Theory]
    [MemberData(nameof(RoundTripTexts))]
    public void Round_trip_is_exact(string text)
    {
        using var folder = LlamaFolder();
        var tokenizer = HfTokenizerLoader.Load(folder.Path);

        var ids = tokenizer.Encode(text);

        Assert.Equal(text, tokenizer.Decode(ids));
    }

    [Fact]
    public void Pieces_merge_and_specials_come_from_the_model()
    {
        using var folder = LlamaFolder();
        var tokenizer = HfTokenizerLoader.Load(folder.Path);

        Assert.Equal(2, tokenizer.Encode("the the").Length); // "▁the", "▁the"
        Assert.Equal(1, tokenizer.BosId);
        Assert.Equal(2, tokenizer.EosId);
        Assert.Equal(tokenizer.EosId, tokenizer.PadId);
        Assert.Contains(tokenizer.Notes, note => note.Contains("pad_token", StringComparison.Ordinal));
        Assert.Equal(3 + 256 + TinySentencePieceModel.Pieces.Length, tokenizer.VocabSize);
        Assert.Equal("the", tokenizer.Decode([1, .. tokenizer.Encode("the"), 2, 2]));
    }

    [Fact]
    public void Padding_side_and_pad_come_from_tokenizer_config()
    {
        using var folder = LlamaFolder(new JsonObject { ["pad_token"] = "<unk>", ["padding_side"] = "left" });
        var tokenizer = HfTokenizerLoader.Load(folder.Path);

        Assert.Equal(0, tokenizer.PadId);
        Assert.Equal(PaddingSide.Left, tokenizer.PaddingSide);
    }

    [Fact]
    public void Broken_model_file_is_refused_naming_the_file()
    {
        var folder = new TinyBpeFolder();
        using (folder)
        {
            File.WriteAllBytes(Path.Combine(folder.Path, "tokenizer.model"), [0x0A, 0xFF, 0x01]);

            var error = Assert.Throws<InvalidDataException>(() => HfTokenizerLoader.Load(folder.Path));

            Assert.Contains("tokenizer.model", error.Message, StringComparison.Ordinal);
        }
    }
}
