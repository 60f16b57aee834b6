namespace CoLM.Determinism;

/// <summary>
/// FNV-1a (64-bit), the one stable hash: the same value in every process and .NET version
/// (string.GetHashCode is randomised per process). Used to name random streams, to fingerprint
/// data files and to compare replicas; not for security.
/// </summary>
public struct StableHash
{
    private const ulong Offset = 0xCBF29CE484222325UL, Prime = 0x100000001B3UL;
    private ulong _value;
    private bool _started;

    /// <summary>The hash of everything added so far (of nothing: the FNV offset basis).</summary>
    public readonly ulong Value => _started ? _value : Offset;

    /// <summary>Adds bytes, so a long file or a list of tensors can be hashed piece by piece.</summary>
    public void Add(ReadOnlySpan<byte> bytes)
    {
        if (!_started)
        {
            _value = Offset;
            _started = true;
        }
        foreach (var b in bytes) _value = unchecked((_value ^ b) * Prime);
    }

    /// <summary>Over the UTF-16 code units of <paramref name="text"/> (for ASCII, the same as over its bytes).</summary>
    public static ulong Of(string text)
    {
        var hash = Offset;
        foreach (var c in text) hash = unchecked((hash ^ c) * Prime);
        return hash;
    }

    /// <summary>Over token ids (each as its 32 bits), e.g. to find examples whose tokens repeat.</summary>
    public static ulong Of(ReadOnlySpan<int> tokens)
    {
        var hash = Offset;
        foreach (var t in tokens) hash = unchecked((hash ^ (uint)t) * Prime);
        return hash;
    }

    /// <summary>Over bytes.</summary>
    public static ulong Of(ReadOnlySpan<byte> bytes)
    {
        var hash = new StableHash();
        hash.Add(bytes);
        return hash.Value;
    }
}
