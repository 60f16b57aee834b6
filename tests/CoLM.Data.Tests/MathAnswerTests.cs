using CoLM.Data;
using Xunit;

namespace CoLM.Data.Tests;

public class MathAnswerTests
{
    [Theory]
    [InlineData("So we get 3 + 4 = 7. The answer is 7.", "7")]
    [InlineData("The answer is 12 apples, not 15.", "12")]
    [InlineData("Total: 5 then 6.\n#### 72", "72")]
    [InlineData("She pays $1,234.50 in total.\n#### 1,234.50", "1234.5")]
    [InlineData("Thus the result is $\\boxed{42}$ and 7 more", "42")]
    [InlineData("\\boxed{\\frac{3}{4}}", "3/4")]
    [InlineData("answer: -17", "-17")]
    [InlineData("The final answer is +8.0", "8")]
    [InlineData("It drops to -3.5 degrees", "-3.5")]
    [InlineData("x = 10 - 5 = 5", "5")]
    [InlineData("First 3 then 9 and finally 11.", "11")]
    [InlineData("About 50% of them", "50")]
    [InlineData("It costs $5.50.", "5.5")]
    [InlineData("1,000,000 people", "1000000")]
    [InlineData("The answer is (B)", "B")]
    [InlineData("Answer: C", "C")]
    [InlineData("The answer is D).", "D")]
    [InlineData("The answer is (c)", "C")]
    [InlineData("I pick B) since it is larger", "B")]
    [InlineData("The answer is 3/4", "3/4")]
    [InlineData("value is .5", "0.5")]
    [InlineData("pages 3-4", "4")]
    [InlineData("The answer is: **1,234**", "1234")]
    [InlineData("The answer is 4. Wait, the answer is 6.", "6")]
    [InlineData("#### 0", "0")]
    [InlineData("We get −2", "-2")]
    public void Extracts_final_answers(string text, string expected) => Assert.Equal(expected, MathAnswer.Extract(text));

    [Theory]
    [InlineData("")]
    [InlineData("I do not know.")]
    [InlineData("The answer is unknown.")]
    [InlineData("x2 and y3")]
    [InlineData("A long story about apples")]
    public void Returns_null_without_an_answer(string text) => Assert.Null(MathAnswer.Extract(text));

    [Theory]
    [InlineData("1,234", "1234", true)]
    [InlineData("5.50", "5.5", true)]
    [InlineData("12.0", "12", true)]
    [InlineData("+7", "7", true)]
    [InlineData("3/4", "0.75", true)]
    [InlineData("-3/4", "-0.75", true)]
    [InlineData("50%", "50", true)]
    [InlineData("$18", "18", true)]
    [InlineData("-5", "5", false)]
    [InlineData("0.3333", "1/3", false)]
    [InlineData("The answer is 72.", "Natalia sold 48 + 24 = 72 clips.\n#### 72", true)]
    [InlineData("(B)", "B", true)]
    [InlineData("b", "B)", true)]
    [InlineData("C", "B", false)]
    [InlineData("7", "B", false)]
    [InlineData("no idea", "5", false)]
    [InlineData("\\frac{1}{2}", "0.5", true)]
    public void Compares_answers(string predicted, string reference, bool expected) =>
        Assert.Equal(expected, MathAnswer.Equivalent(predicted, reference));
}
