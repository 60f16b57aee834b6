namespace CoLM.Data;

/// <summary>FNV-1a over UTF-16 code units. string.GetHashCode is randomized per process, which
/// would make seeded per-source choices differ between runs.</summary>
internal static class StableHash
{
    public static ulong Of(string text)
    {
        var hash = 0xCBF29CE484222325UL;
        foreach (var c in text)
        {
            unchecked
            {
                hash = (hash ^ c) * 0x100000001B3UL;
            }
        }

        return hash;
    }
}
