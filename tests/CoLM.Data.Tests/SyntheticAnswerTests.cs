using System.Globalization;
using CoLM.Data;
using Xunit;

namespace CoLM.Data.Tests;

/// <summary>Re-derives every answer from its prompt, independently of the generator.</summary>
public class SyntheticAnswerTests
{
    [Fact]
    public void Every_answer_is_correct_for_its_skill()
    {
        var train = SyntheticMixture.Generate(new SyntheticMixtureSettings(), out var heldout);
        var checkedPerSource = new Dictionary<string, int>();
        foreach (var e in train.Concat(heldout))
        {
            Assert.Equal(Solve(e.Source, e.Prompt), e.Target);
            checkedPerSource[e.Source] = checkedPerSource.GetValueOrDefault(e.Source) + 1;
        }

        Assert.Equal(10, checkedPerSource.Count);
    }

    [Theory]
    [InlineData("arith.add", "add 12 7 =", "19")]
    [InlineData("arith.sub", "sub 31 7 =", "24")]
    [InlineData("arith.max", "max 12 37 =", "37")]
    [InlineData("arith.mul", "mul 7 8 =", "56")]
    [InlineData("string.reverse", "rev abcd =", "dcba")]
    [InlineData("string.upper", "upper cat =", "CAT")]
    [InlineData("string.count", "count a in abca =", "2")]
    [InlineData("string.sort", "sort 5391 =", "1359")]
    [InlineData("logic.parity", "odd 7 =", "yes")]
    [InlineData("string.next", "next caz =", "dba")]
    public void Reference_solver_agrees_with_hand_examples(string source, string prompt, string answer) =>
        Assert.Equal(answer, Solve(source, prompt));

    private static string Solve(string source, string prompt)
    {
        var parts = prompt.Split(' ');
        Assert.Equal("=", parts[^1]);
        int N(int i) => int.Parse(parts[i], CultureInfo.InvariantCulture);
        string S(int i) => parts[i];
        return source switch
        {
            "arith.add" => Num(N(1) + N(2)),
            "arith.sub" => Num(N(1) - N(2)),
            "arith.max" => Num(Math.Max(N(1), N(2))),
            "arith.mul" => Num(N(1) * N(2)),
            "string.reverse" => new string(S(1).Reverse().ToArray()),
            "string.upper" => S(1).ToUpperInvariant(),
            "string.count" => Num(S(3).Count(c => c == S(1)[0])),
            "string.sort" => new string(S(1).Order().ToArray()),
            "logic.parity" => N(1) % 2 == 1 ? "yes" : "no",
            "string.next" => new string(S(1).Select(c => (char)('a' + (c - 'a' + 1) % 26)).ToArray()),
            _ => throw new InvalidOperationException($"unknown source {source}"),
        };
    }

    private static string Num(int n) => n.ToString(CultureInfo.InvariantCulture);
}
