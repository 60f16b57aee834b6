using System.Text;

namespace CoLM.Data;

/// <summary>
/// Character-level tokenizer over a fixed vocabulary: pad, bos, eos, unk, printable ASCII 32..126,
/// and '\n'. The vocabulary never depends on the data, so model shapes (embedding, LM head) are the
/// same for every dataset and checkpoints stay interchangeable.
/// </summary>
public sealed class CharTokenizer : ITokenizer
{
    public const int Pad = 0;
    public const int Bos = 1;
    public const int Eos = 2;
    public const int Unk = 3;

    private const int FirstPrintable = 32;
    private const int LastPrintable = 126;
    private const int FirstCharId = 4;
    private const int NewlineId = FirstCharId + LastPrintable - FirstPrintable + 1;

    /// <summary>Shown for unk when decoding, so unknown input stays visible rather than silently vanishing.</summary>
    public const char UnknownChar = '\uFFFD';

    private CharTokenizer()
    {
    }

    public static CharTokenizer Instance { get; } = new();

    public int VocabSize => NewlineId + 1;
    public int PadId => Pad;
    public int BosId => Bos;
    public int EosId => Eos;
    public int UnkId => Unk;

    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length);
        // Runes, not chars: a character outside the BMP is one unknown symbol, not two.
        foreach (var rune in text.EnumerateRunes())
        {
            ids.Add(IdOf(rune.Value));
        }

        return ids.ToArray();
    }

    public string Decode(ReadOnlySpan<int> ids)
    {
        var text = new StringBuilder(ids.Length);
        foreach (var id in ids)
        {
            if (id < 0 || id >= VocabSize)
            {
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"token id outside the vocabulary [0, {VocabSize})");
            }

            if (id is Pad or Bos or Eos)
            {
                continue;
            }

            text.Append(CharOf(id));
        }

        return text.ToString();
    }

    private static int IdOf(int codePoint) => codePoint switch
    {
        >= FirstPrintable and <= LastPrintable => codePoint - FirstPrintable + FirstCharId,
        '\n' => NewlineId,
        _ => Unk,
    };

    private static char CharOf(int id) => id switch
    {
        Unk => UnknownChar,
        NewlineId => '\n',
        _ => (char)(id - FirstCharId + FirstPrintable),
    };
}
