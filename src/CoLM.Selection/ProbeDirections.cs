using CoLM.Determinism;

namespace CoLM.Selection;

/// <summary>
/// The random probe directions z_k of the zeroth-order sketch (COLM.md step 4).
/// Anyone holding the probe seed regenerates exactly the same z_k, in plain C# with no libtorch,
/// so a trainer sends only the K scalars c_ik per example and the coordinator rebuilds
/// g_i = (1/K) sum_k c_ik z_k itself.
/// </summary>
public static class ProbeDirections
{
    /// <summary>Fills <paramref name="destination"/> with z_probe ~ N(0, I) for this seed.</summary>
    public static void Fill(long seed, int probe, Span<float> destination)
    {
        // Counter-based: element j of probe k depends only on (seed, k, j), so generation order,
        // threading and partial regeneration never change the values.
        ulong stream = RandomStreams.ProbeStream(seed, probe);
        for (int j = 0; j < destination.Length; j += 2)
        {
            ulong r1 = RandomStreams.Mix(stream + (ulong)j);
            ulong r2 = RandomStreams.Mix(stream + (ulong)j + 1);
            // Box-Muller on two uniforms in (0, 1].
            double u1 = ((r1 >> 11) + 1.0) / 9007199254740992.0;
            double u2 = (r2 >> 11) / 9007199254740992.0;
            double radius = Math.Sqrt(-2.0 * Math.Log(u1));
            double angle = 2.0 * Math.PI * u2;
            destination[j] = (float)(radius * Math.Cos(angle));
            if (j + 1 < destination.Length) destination[j + 1] = (float)(radius * Math.Sin(angle));
        }
    }
}
