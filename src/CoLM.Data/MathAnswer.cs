using System.Globalization;
using System.Text.RegularExpressions;

namespace CoLM.Data;

/// <summary>
/// Pulls the final answer (a number or a multiple-choice letter) out of a math solution and compares
/// answers. Explicit markers win, latest first within each kind: "\boxed{X}", then GSM8K's "#### X",
/// then "The answer is X" / "answer: X"; without a marker the last number in the text is taken, and
/// failing that the last choice written "(B)" or "B)". Numbers come back normalised: commas, "$",
/// a leading "+" and a trailing "%" removed, trailing zeros dropped ("5.50" -> "5.5", "12.0" -> "12");
/// fractions stay "3/4" and compare numerically. Choices come back as an upper-case letter; after a
/// marker a bare letter counts only when it ends the clause ("The answer is C.") or is B-H/J followed by
/// a word, so "Answer: I think..." or "The answer is A lot" are not read as choices.
/// </summary>
public static class MathAnswer
{
    private const RegexOptions Options = RegexOptions.CultureInvariant | RegexOptions.ExplicitCapture;

    // A number, not glued to a preceding word or decimal point (so "x2" and "3-4" do not yield "2"/"-4");
    // "1,234" is one number but "1,2" is two.
    private const string NumberPattern =
        @"(?<![\w.])(?<sign>[-+\u2212]?)\$?(?<int>\d{1,3}(?:,\d{3})+(?!\d)|\d+)?(?<frac>\.\d+)?(?:/(?<den>\d+)(?![\d.]))?\s?(?<pct>%|\\%)?";

    private static readonly Regex Number = new(NumberPattern, Options);
    private static readonly Regex WholeNumber = new(@"^\s*" + NumberPattern + @"\s*\.?\s*$", Options);
    private static readonly Regex WholeChoice = new(@"^\s*\(?(?<c>[A-Ja-j])\)?\s*[.:]?\s*$", Options);
    private static readonly Regex GsmMarker = new(@"####\s*", Options);
    private static readonly Regex AnswerMarker = new(@"(?:\bthe\s+(?:final\s+)?answer\s+is|\banswer\s*:)[\s:*$]*", Options | RegexOptions.IgnoreCase);
    private static readonly Regex LeadingChoice = new(@"^\(?(?<c>[A-J])\)(?!\w)|^\((?<c>[a-j])\)|^(?<c>[A-J])(?=\s*$|[.,;:!])|^(?<c>[B-HJ])(?=\s)", Options);
    private static readonly Regex ChoiceAnywhere = new(@"\((?<c>[A-J])\)|(?<![\w(])(?<c>[A-J])\)", Options);
    private static readonly Regex Frac = new(@"\\d?frac\{\s*(?<n>-?\d+)\s*\}\{\s*(?<d>\d+)\s*\}", Options);

    /// <summary>The final answer in <paramref name="text"/>, or null when it has none.</summary>
    public static string? Extract(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (LastBoxed(text) is { } boxed)
        {
            return NormalizeBare(boxed) ?? FirstAnswerIn(boxed) ?? (boxed.Trim().Length > 0 ? boxed.Trim() : null);
        }

        foreach (var marker in new[] { GsmMarker, AnswerMarker })
        {
            var matches = marker.Matches(text);
            for (var m = matches.Count - 1; m >= 0; m--)
            {
                var after = matches[m].Index + matches[m].Length;
                var lineEnd = text.IndexOf('\n', after);
                var rest = text[after..(lineEnd < 0 ? text.Length : lineEnd)];
                if (FirstAnswerIn(rest) is { } found)
                {
                    return found;
                }
            }
        }

        if (LastNumber(text) is { } number)
        {
            return number;
        }

        var choices = ChoiceAnywhere.Matches(text);
        return choices.Count > 0 ? choices[^1].Groups["c"].Value : null;
    }

    /// <summary>
    /// Whether two answers agree: numerically (within 1e-6 relative) when both are numbers, by letter
    /// when both are choices, else as trimmed case-insensitive text. A side that is not a bare answer
    /// (e.g. a whole solution, or a GSM8K reference ending "#### 72") is first passed through
    /// <see cref="Extract"/>.
    /// </summary>
    public static bool Equivalent(string predicted, string reference)
    {
        ArgumentNullException.ThrowIfNull(predicted);
        ArgumentNullException.ThrowIfNull(reference);
        var a = NormalizeBare(predicted) ?? Extract(predicted);
        var b = NormalizeBare(reference) ?? Extract(reference);
        if (a is null || b is null)
        {
            return a is null && b is null && string.Equals(predicted.Trim(), reference.Trim(), StringComparison.OrdinalIgnoreCase);
        }

        if (TryValue(a, out var x) && TryValue(b, out var y))
        {
            return Math.Abs(x - y) <= 1e-6 * Math.Max(1.0, Math.Max(Math.Abs(x), Math.Abs(y)));
        }

        return string.Equals(a.Trim(), b.Trim(), StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>The answer when the whole string is one number or choice; null otherwise.</summary>
    private static string? NormalizeBare(string s)
    {
        s = StripLatex(s);
        var number = WholeNumber.Match(s);
        if (number.Success && Normalize(number) is { } n)
        {
            return n;
        }

        var choice = WholeChoice.Match(s);
        return choice.Success ? choice.Groups["c"].Value.ToUpperInvariant() : null;
    }

    /// <summary>The choice or number that the text after an answer marker starts with.</summary>
    private static string? FirstAnswerIn(string rest)
    {
        rest = StripLatex(rest).TrimStart();
        var choice = LeadingChoice.Match(rest);
        if (choice.Success)
        {
            return choice.Groups["c"].Value.ToUpperInvariant();
        }

        foreach (Match m in Number.Matches(rest))
        {
            if (Normalize(m) is { } n)
            {
                return n;
            }
        }

        return null;
    }

    private static string? LastNumber(string text)
    {
        text = StripLatex(text);
        string? last = null;
        foreach (Match m in Number.Matches(text))
        {
            last = Normalize(m) ?? last;
        }

        return last;
    }

    private static string StripLatex(string s) =>
        Frac.Replace(s, m => $"{m.Groups["n"].Value}/{m.Groups["d"].Value}").Replace("\\!", string.Empty).Replace("{,}", ",");

    /// <summary>Canonical text for a number match, or null when the match holds no digits.</summary>
    private static string? Normalize(Match m)
    {
        var integer = m.Groups["int"].Value.Replace(",", string.Empty);
        var fraction = m.Groups["frac"].Value;
        if (integer.Length == 0 && fraction.Length == 0)
        {
            return null;
        }

        var negative = m.Groups["sign"].Value is "-" or "\u2212";
        if (!decimal.TryParse((integer.Length == 0 ? "0" : integer) + fraction, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value))
        {
            return null;
        }

        var text = value.ToString("0.############################", CultureInfo.InvariantCulture);
        if (m.Groups["den"].Success)
        {
            text += "/" + m.Groups["den"].Value.TrimStart('0').PadLeft(1, '0');
        }

        return negative && (value != 0 || m.Groups["den"].Success) ? "-" + text : text;
    }

    private static bool TryValue(string answer, out double value)
    {
        value = 0;
        var negative = answer.StartsWith('-');
        var body = negative ? answer[1..] : answer;
        var slash = body.IndexOf('/');
        if (slash < 0)
        {
            if (!double.TryParse(body, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out value))
            {
                return false;
            }
        }
        else
        {
            if (!double.TryParse(body[..slash], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var num)
                || !double.TryParse(body[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var den)
                || den == 0)
            {
                return false;
            }

            value = num / den;
        }

        value = negative ? -value : value;
        return true;
    }

    /// <summary>Content of the last \boxed{...} (braces balanced), or null.</summary>
    private static string? LastBoxed(string text)
    {
        var start = text.LastIndexOf("\\boxed{", StringComparison.Ordinal);
        if (start < 0)
        {
            return null;
        }

        var open = start + "\\boxed{".Length;
        var depth = 1;
        for (var i = open; i < text.Length; i++)
        {
            if (text[i] == '{')
            {
                depth++;
            }
            else if (text[i] == '}' && --depth == 0)
            {
                return text[open..i];
            }
        }

        return null;
    }
}
