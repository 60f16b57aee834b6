using System.Text;

namespace CoLM.Tokenizers.Tests;

/// <summary>
/// Writes a tiny Llama-style SentencePiece BPE model (sentencepiece_model.proto, encoded by hand):
/// unk/bos/eos, the 256 byte-fallback pieces, and a few merged pieces.
/// </summary>
internal static class TinySentencePieceModel
{
    private const int Normal = 1;
    private const int Unknown = 2;
    private const int Control = 3;
    private const int Byte = 6;

    public static readonly string[] Pieces = ["▁", "t", "h", "e", "i", "n", "1", "2", "th", "the", "▁the", "in", "12"];

    public static byte[] Build()
    {
        var model = new MemoryStream();
        var score = 0f;
        AddPiece(model, "<unk>", 0, Unknown);
        AddPiece(model, "<s>", 0, Control);
        AddPiece(model, "</s>", 0, Control);
        for (var b = 0; b < 256; b++)
        {
            AddPiece(model, $"<0x{b:X2}>", 0, Byte);
        }

        // Longer pieces score higher, so BPE merges them first.
        foreach (var piece in Pieces)
        {
            score = -100 + piece.Length;
            AddPiece(model, piece, score, Normal);
        }

        var trainer = new MemoryStream();
        WriteVarintField(trainer, 3, 2); // model_type: BPE
        WriteVarintField(trainer, 4, (ulong)(3 + 256 + Pieces.Length)); // vocab_size
        WriteVarintField(trainer, 35, 1); // byte_fallback
        WriteVarintField(trainer, 40, 0); // unk_id
        WriteVarintField(trainer, 41, 1); // bos_id
        WriteVarintField(trainer, 42, 2); // eos_id
        WriteVarintField(trainer, 43, unchecked((ulong)-1L)); // pad_id: none
        WriteBytesField(model, 2, trainer.ToArray());

        var normalizer = new MemoryStream();
        WriteBytesField(normalizer, 1, Encoding.UTF8.GetBytes("identity"));
        WriteVarintField(normalizer, 3, 1); // add_dummy_prefix
        WriteVarintField(normalizer, 4, 0); // remove_extra_whitespaces
        WriteVarintField(normalizer, 5, 1); // escape_whitespaces
        WriteBytesField(model, 3, normalizer.ToArray());
        return model.ToArray();
    }

    private static void AddPiece(MemoryStream model, string piece, float score, int type)
    {
        var message = new MemoryStream();
        WriteBytesField(message, 1, Encoding.UTF8.GetBytes(piece));
        WriteTag(message, 2, 5);
        message.Write(BitConverter.GetBytes(score)); // little-endian fixed32
        WriteVarintField(message, 3, (ulong)type);
        WriteBytesField(model, 1, message.ToArray());
    }

    private static void WriteVarintField(Stream stream, int field, ulong value)
    {
        WriteTag(stream, field, 0);
        WriteVarint(stream, value);
    }

    private static void WriteBytesField(Stream stream, int field, byte[] value)
    {
        WriteTag(stream, field, 2);
        WriteVarint(stream, (ulong)value.Length);
        stream.Write(value);
    }

    private static void WriteTag(Stream stream, int field, int wireType) => WriteVarint(stream, ((ulong)field << 3) | (uint)wireType);

    private static void WriteVarint(Stream stream, ulong value)
    {
        while (value >= 0x80)
        {
            stream.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }

        stream.WriteByte((byte)value);
    }
}
