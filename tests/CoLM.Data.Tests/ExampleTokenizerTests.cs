using CoLM.Data;
using Xunit;

namespace CoLM.Data.Tests;

public class ExampleTokenizerTests
{
    private static readonly CharTokenizer Tok = CharTokenizer.Instance;

    private static TokenizedExample Make(string prompt, string target, int maxLength) =>
        ExampleTokenizer.Tokenize(new RawExample("s", prompt, target, "t:1"), 7, 3, Tok, maxLength);

    [Fact]
    public void Layout_is_bos_prompt_target_eos_with_loss_on_target_and_eos()
    {
        var e = Make("add 1 2 =", "3", 48);
        var expected = new[] { Tok.BosId }.Concat(Tok.Encode("add 1 2 =")).Concat(Tok.Encode("3")).Append(Tok.EosId);
        Assert.Equal(expected, e.Tokens);
        Assert.Equal(1 + "add 1 2 =".Length, e.PromptLength);
        Assert.Equal(2, e.TargetLength);
        Assert.Equal("3", Tok.Decode(e.Tokens.AsSpan(e.PromptLength)));
        Assert.False(e.Truncated);
        Assert.Equal((7, 3), (e.Id, e.SourceId));
    }

    [Fact]
    public void Exact_fit_is_not_truncated()
    {
        var e = Make("abc", "de", 7); // 1 + 3 + 2 + 1
        Assert.Equal(7, e.Tokens.Length);
        Assert.False(e.Truncated);
    }

    [Fact]
    public void Long_target_is_cut_from_the_right_keeping_the_prompt()
    {
        var e = Make("abc", "defghij", 8);
        Assert.True(e.Truncated);
        Assert.Equal(8, e.Tokens.Length);
        Assert.Equal(4, e.PromptLength);
        Assert.Equal("abcdefg", Tok.Decode(e.Tokens));
        Assert.NotEqual(Tok.EosId, e.Tokens[^1]);
    }

    [Fact]
    public void Prompt_filling_the_window_is_cut_from_the_left_keeping_target_and_eos()
    {
        var e = Make("0123456789abcdef", "xy", 10);
        Assert.True(e.Truncated);
        Assert.Equal(10, e.Tokens.Length);
        Assert.Equal(Tok.BosId, e.Tokens[0]);
        Assert.Equal(Tok.EosId, e.Tokens[^1]);
        Assert.Equal(7, e.PromptLength); // 10 - 3 answer tokens (x, y, EOS)
        Assert.Equal("abcdef", Tok.Decode(e.Tokens.AsSpan(0, e.PromptLength)));
        Assert.Equal("xy", Tok.Decode(e.Tokens.AsSpan(e.PromptLength)));
    }

    [Fact]
    public void Left_cut_keeps_at_most_half_the_window_for_a_long_target()
    {
        var e = Make("0123456789abcdef", "ABCDEFGHIJ", 10);
        Assert.True(e.Truncated);
        Assert.Equal(5, e.TargetLength);
        Assert.Equal(5, e.PromptLength);
        Assert.Equal("cdef", Tok.Decode(e.Tokens.AsSpan(1, 4)));
        Assert.Equal("ABCDE", Tok.Decode(e.Tokens.AsSpan(e.PromptLength)));
    }

    [Fact]
    public void Smallest_window_keeps_bos_and_one_target_token()
    {
        var e = Make("prompt", "t", 2);
        Assert.Equal(new[] { Tok.BosId, Tok.Encode("t")[0] }, e.Tokens);
        Assert.Equal(1, e.PromptLength);
    }

    [Fact]
    public void Too_small_max_length_is_rejected_naming_the_setting()
    {
        var ex = Assert.Throws<DataFormatException>(() => Make("a", "b", 1));
        Assert.Equal("maxLength", ex.Origin);
        Assert.Contains("maxLength", ex.Message);
    }
}
