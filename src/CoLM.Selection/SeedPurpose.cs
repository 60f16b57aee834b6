namespace CoLM.Selection;

/// <summary>Salts that keep the random streams drawn from one call seed independent of each other.</summary>
internal static class SeedPurpose
{
    public const ulong KeptSample = 0x4B455054UL;   // "KEPT"
    public const ulong RandomBatch = 0x52414E44UL;  // "RAND"
    public const ulong SourceRandom = 0x53524E44UL; // "SRND"
}
