using CoLM.Data;
using Microsoft.ML.Tokenizers;

namespace CoLM.Tokenizers;

/// <summary>Which side a batch is padded on, as <c>padding_side</c> in tokenizer_config.json.</summary>
public enum PaddingSide
{
    Right,
    Left,
}

/// <summary>
/// A Hugging Face tokenizer loaded by <see cref="HfTokenizerLoader"/>, behind <see cref="ITokenizer"/>.
/// Encoding never adds BOS/EOS; decoding drops pad, BOS and EOS and keeps other added tokens.
/// </summary>
public sealed class HfTokenizer : ITokenizer
{
    private readonly Func<string, IReadOnlyList<int>> _encode;
    private readonly Func<IEnumerable<int>, string> _decode;

    internal HfTokenizer(
        Tokenizer inner,
        Func<string, IReadOnlyList<int>> encode,
        Func<IEnumerable<int>, string> decode,
        int vocabSize,
        SpecialToken pad,
        SpecialToken bos,
        SpecialToken eos,
        SpecialToken? unk,
        PaddingSide paddingSide,
        string kind,
        IReadOnlyList<string> notes)
    {
        Inner = inner;
        _encode = encode;
        _decode = decode;
        VocabSize = vocabSize;
        Pad = pad;
        Bos = bos;
        Eos = eos;
        Unk = unk;
        PaddingSide = paddingSide;
        Kind = kind;
        Notes = notes;
    }

    /// <summary>The Microsoft.ML.Tokenizers object doing the work.</summary>
    public Tokenizer Inner { get; }

    public int VocabSize { get; }
    public int PadId => Pad.Id;
    public int BosId => Bos.Id;
    public int EosId => Eos.Id;

    public SpecialToken Pad { get; }
    public SpecialToken Bos { get; }
    public SpecialToken Eos { get; }
    public SpecialToken? Unk { get; }

    public PaddingSide PaddingSide { get; }

    /// <summary>What was loaded, e.g. "byte-level BPE (CodeGen)".</summary>
    public string Kind { get; }

    /// <summary>Fallbacks the loader took (such as pad falling back to eos), for the caller to log.</summary>
    public IReadOnlyList<string> Notes { get; }

    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length == 0)
        {
            return [];
        }

        var ids = _encode(text);
        var result = new int[ids.Count];
        for (var i = 0; i < result.Length; i++)
        {
            result[i] = ids[i];
        }

        return result;
    }

    public string Decode(ReadOnlySpan<int> ids)
    {
        var kept = new List<int>(ids.Length);
        foreach (var id in ids)
        {
            if (id < 0 || id >= VocabSize)
            {
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"token id outside the vocabulary [0, {VocabSize})");
            }

            if (id == PadId || id == BosId || id == EosId)
            {
                continue;
            }

            kept.Add(id);
        }

        return kept.Count == 0 ? string.Empty : _decode(kept);
    }
}

/// <summary>A special token's text and id.</summary>
public sealed record SpecialToken(string Content, int Id);
