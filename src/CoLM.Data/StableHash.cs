namespace CoLM.Data;

/// <summary>FNV-1a, 64-bit. string.GetHashCode is randomized per process, which would make seeded
/// per-source choices differ between runs.</summary>
public static class StableHash
{
    private const ulong Offset = 0xCBF29CE484222325UL, Prime = 0x100000001B3UL;

    /// <summary>Over the UTF-16 code units of <paramref name="text"/>.</summary>
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
}
