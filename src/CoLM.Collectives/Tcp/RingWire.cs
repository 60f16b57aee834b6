using System.Buffers.Binary;
using System.Text;

namespace CoLM.Collectives.Tcp;

/// <summary>The byte layouts of the ring protocol (little-endian).</summary>
internal static class RingWire
{
    /// <summary>Hello (connector to acceptor) and its acknowledgement: magic, generation, rank, world size.</summary>
    public const int HelloBytes = 20;

    /// <summary>Per call, every rank's header reaches every rank: magic, origin, op, root, length, sequence.</summary>
    public const int HeaderBytes = 32;

    /// <summary>A fault notice, sent upstream on the otherwise unused direction of a ring link.</summary>
    public const int NoticeFixedBytes = 20;

    public const int MaxNoticeTextBytes = 4096;

    private const uint HelloMagic = 0x47524C43; // "CLRG"
    private const uint HeaderMagic = 0x4C4C4143; // "CALL"
    private const uint NoticeMagic = 0x544C5546; // "FULT"

    public static void WriteHello(Span<byte> bytes, long generation, int rank, int worldSize)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, HelloMagic);
        BinaryPrimitives.WriteInt64LittleEndian(bytes[4..], generation);
        BinaryPrimitives.WriteInt32LittleEndian(bytes[12..], rank);
        BinaryPrimitives.WriteInt32LittleEndian(bytes[16..], worldSize);
    }

    public static bool TryReadHello(ReadOnlySpan<byte> bytes, out long generation, out int rank, out int worldSize)
    {
        generation = BinaryPrimitives.ReadInt64LittleEndian(bytes[4..]);
        rank = BinaryPrimitives.ReadInt32LittleEndian(bytes[12..]);
        worldSize = BinaryPrimitives.ReadInt32LittleEndian(bytes[16..]);
        return BinaryPrimitives.ReadUInt32LittleEndian(bytes) == HelloMagic;
    }

    public static void WriteHeader(Span<byte> bytes, in CallHeader header)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, HeaderMagic);
        BinaryPrimitives.WriteInt32LittleEndian(bytes[4..], header.Origin);
        BinaryPrimitives.WriteInt32LittleEndian(bytes[8..], (int)header.Op);
        BinaryPrimitives.WriteInt32LittleEndian(bytes[12..], header.Root);
        BinaryPrimitives.WriteInt32LittleEndian(bytes[16..], header.Length);
        BinaryPrimitives.WriteInt32LittleEndian(bytes[20..], 0);
        BinaryPrimitives.WriteInt64LittleEndian(bytes[24..], header.Sequence);
    }

    public static bool TryReadHeader(ReadOnlySpan<byte> bytes, out CallHeader header)
    {
        header = new CallHeader(
            BinaryPrimitives.ReadInt32LittleEndian(bytes[4..]),
            (CollectiveOp)BinaryPrimitives.ReadInt32LittleEndian(bytes[8..]),
            BinaryPrimitives.ReadInt32LittleEndian(bytes[12..]),
            BinaryPrimitives.ReadInt32LittleEndian(bytes[16..]),
            BinaryPrimitives.ReadInt64LittleEndian(bytes[24..]));
        return BinaryPrimitives.ReadUInt32LittleEndian(bytes) == HeaderMagic;
    }

    public static byte[] Notice(RingFault fault)
    {
        var operation = Truncate(fault.Operation);
        var reason = Truncate(fault.Reason);
        var bytes = new byte[NoticeFixedBytes + operation.Length + reason.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, NoticeMagic);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4), (int)fault.Kind);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(8), fault.MissingRank);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(12), operation.Length);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(16), reason.Length);
        operation.CopyTo(bytes, NoticeFixedBytes);
        reason.CopyTo(bytes, NoticeFixedBytes + operation.Length);
        return bytes;
    }

    /// <summary>The text lengths of a notice's fixed part, or false when it is not a notice.</summary>
    public static bool TryReadNoticeLengths(ReadOnlySpan<byte> bytes, out int operationBytes, out int reasonBytes)
    {
        operationBytes = BinaryPrimitives.ReadInt32LittleEndian(bytes[12..]);
        reasonBytes = BinaryPrimitives.ReadInt32LittleEndian(bytes[16..]);
        return BinaryPrimitives.ReadUInt32LittleEndian(bytes) == NoticeMagic
            && operationBytes is >= 0 and <= MaxNoticeTextBytes
            && reasonBytes is >= 0 and <= MaxNoticeTextBytes;
    }

    public static RingFault ReadNotice(ReadOnlySpan<byte> bytes, int operationBytes)
    {
        var kind = (RingFaultKind)BinaryPrimitives.ReadInt32LittleEndian(bytes[4..]);
        var missing = BinaryPrimitives.ReadInt32LittleEndian(bytes[8..]);
        var text = bytes[NoticeFixedBytes..];
        return new RingFault(
            kind == RingFaultKind.Timeout ? RingFaultKind.Timeout : RingFaultKind.Aborted,
            Encoding.UTF8.GetString(text[..operationBytes]),
            missing,
            Encoding.UTF8.GetString(text[operationBytes..]));
    }

    private static byte[] Truncate(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        return bytes.Length <= MaxNoticeTextBytes ? bytes : bytes[..MaxNoticeTextBytes];
    }
}

/// <summary>What one rank brought to a call; every rank learns every rank's header before data moves.</summary>
internal readonly record struct CallHeader(int Origin, CollectiveOp Op, int Root, int Length, long Sequence);

/// <summary>Names a call in messages, formatted only when a message is made.</summary>
internal readonly record struct CallId(CollectiveOp Op, long Sequence)
{
    public override string ToString() => $"{Op} call #{Sequence}";
}

internal enum RingFaultKind
{
    Aborted = 1,
    Timeout = 2,
}

/// <summary>Why a generation broke, in a form that can travel to the other ranks.</summary>
internal sealed record RingFault(RingFaultKind Kind, string Operation, int MissingRank, string Reason)
{
    public Exception ToException(long generation, TimeSpan timeout) => Kind == RingFaultKind.Timeout
        ? new CollectiveTimeoutException(Operation, generation, [MissingRank], timeout)
        : new CollectiveAbortedException(Reason, generation);
}
