using CoLM.Data;
using Xunit;

namespace CoLM.Data.Tests;

public class CharTokenizerTests
{
    private static readonly CharTokenizer Tok = CharTokenizer.Instance;

    [Fact]
    public void Vocabulary_is_fixed_specials_plus_printable_ascii_and_newline()
    {
        Assert.Equal(4 + 95 + 1, Tok.VocabSize);
        Assert.Equal(new[] { 0, 1, 2 }, new[] { Tok.PadId, Tok.BosId, Tok.EosId });
    }

    [Fact]
    public void Round_trips_every_printable_ascii_char_and_newline()
    {
        var text = new string(Enumerable.Range(32, 95).Select(c => (char)c).ToArray()) + "\nadd 12 7 = 19\n";
        var ids = Tok.Encode(text);
        Assert.Equal(text.Length, ids.Length);
        Assert.All(ids, id => Assert.InRange(id, 4, Tok.VocabSize - 1));
        Assert.Equal(text, Tok.Decode(ids));
    }

    [Fact]
    public void Unknown_chars_map_to_one_unk_each_even_outside_the_bmp()
    {
        var ids = Tok.Encode("a\té😀b");
        Assert.Equal(new[] { Tok.Encode("a")[0], CharTokenizer.Unk, CharTokenizer.Unk, CharTokenizer.Unk, Tok.Encode("b")[0] }, ids);
    }

    [Fact]
    public void Decode_drops_pad_bos_eos()
    {
        var ids = new[] { Tok.BosId }.Concat(Tok.Encode("hi")).Append(Tok.EosId).Append(Tok.PadId).ToArray();
        Assert.Equal("hi", Tok.Decode(ids));
    }

    [Fact]
    public void Decode_rejects_ids_outside_the_vocabulary()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Tok.Decode(new[] { Tok.VocabSize }));
    }
}
