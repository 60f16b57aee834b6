namespace CoLM.Collectives.Nccl;

/// <summary>
/// NCCL's rendezvous token (ncclUniqueId, 128 opaque bytes: rank 0's bootstrap address and a
/// random tag). Rank 0 makes one with <see cref="NcclCommunicator.CreateUniqueId"/>; every rank
/// passes the same id to <see cref="NcclCommunicator"/>. Between processes it travels as
/// <see cref="ToBytes"/> inside a cluster message (rank 0 to the coordinator, the coordinator to
/// every rank of the generation) and is rebuilt with <see cref="FromBytes"/>. Equality compares
/// the bytes; <c>default</c> is 128 zero bytes.
/// </summary>
public readonly record struct NcclUniqueId
{
    /// <summary>NCCL_UNIQUE_ID_BYTES.</summary>
    public const int Size = NcclNative.UniqueIdBlob.Size;

    private static readonly byte[] Zero = new byte[Size];

    private readonly byte[]? _bytes;

    private NcclUniqueId(byte[] bytes) => _bytes = bytes;

    /// <summary>The id from exactly <see cref="Size"/> bytes (copied).</summary>
    public static NcclUniqueId FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Size)
        {
            throw new ArgumentException($"An NCCL unique id is {Size} bytes, not {bytes.Length}.", nameof(bytes));
        }

        return new NcclUniqueId(bytes.ToArray());
    }

    /// <summary>A fresh copy of the 128 bytes.</summary>
    public byte[] ToBytes() => AsSpan().ToArray();

    public ReadOnlySpan<byte> AsSpan() => _bytes ?? Zero;

    public bool Equals(NcclUniqueId other) => AsSpan().SequenceEqual(other.AsSpan());

    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.AddBytes(AsSpan());
        return hash.ToHashCode();
    }

    /// <summary>Only a prefix: enough to tell ids apart in logs.</summary>
    public override string ToString() => $"NcclUniqueId({Convert.ToHexString(AsSpan()[..8])}...)";

    internal unsafe NcclNative.UniqueIdBlob ToNative()
    {
        var blob = default(NcclNative.UniqueIdBlob);
        AsSpan().CopyTo(new Span<byte>(blob.Bytes, Size));
        return blob;
    }

    internal static unsafe NcclUniqueId FromNative(NcclNative.UniqueIdBlob blob) =>
        FromBytes(new ReadOnlySpan<byte>(blob.Bytes, Size));
}
