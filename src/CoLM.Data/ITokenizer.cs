namespace CoLM.Data;

public interface ITokenizer
{
    int VocabSize { get; }
    int PadId { get; }
    int BosId { get; }
    int EosId { get; }

    /// <summary>Encodes text without adding BOS/EOS; callers decide the framing.</summary>
    int[] Encode(string text);

    /// <summary>Decodes ids back to text; pad, BOS and EOS are dropped.</summary>
    string Decode(ReadOnlySpan<int> ids);
}
