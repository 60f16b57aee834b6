using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace CoLM.Selection;

/// <summary>
/// Rebuilds slices of g_i = (1/K) sum_k c_ik z_k from an example's sketch. Every pass of the
/// selector goes through here, so the same example always yields bit-identical values.
/// </summary>
/// <remarks>
/// The basis is stored interleaved: for each block of <see cref="Lanes"/> dims, the K probes'
/// values lie next to each other ([block][k][lane]). One register of g then accumulates all K
/// probes from one sequential stream. The plain [k][d] layout puts the K streams a multiple of
/// 4 KiB apart, where they evict each other from L1 and made this loop ten times slower.
/// </remarks>
internal static class SketchGradients
{
    public const int Lanes = 16;

    /// <summary>Floats needed for K probes of <paramref name="dim"/> dims (the last block zero-padded).</summary>
    public static long Size(int probes, int dim) => (long)((dim + Lanes - 1) / Lanes) * probes * Lanes;

    /// <summary>Where value d of probe k lives.</summary>
    public static long Index(int probes, int k, int d) => ((long)(d / Lanes) * probes + k) * Lanes + d % Lanes;

    /// <summary>
    /// g = (1/K) sum_k coefs[k] z_k[firstDim .. firstDim + g.Length) with firstDim a multiple of
    /// <see cref="Lanes"/>; non-finite values (overflow from huge coefficients) become 0. Returns
    /// whether any did.
    /// </summary>
    public static bool Rebuild(ReadOnlySpan<float> coefs, float[] basis, int firstDim, Span<float> g)
    {
        if (g.IsEmpty) return false;
        int probes = coefs.Length;
        float scale = 1f / probes;
        int blockSize = probes * Lanes;
        ref float first = ref basis[(long)(firstDim / Lanes) * blockSize];
        ref float c = ref Unsafe.AsRef(in coefs[0]);
        int fullBlocks = g.Length / Lanes;
        for (int b = 0; b < fullBlocks; b++)
        {
            ref float block = ref Unsafe.Add(ref first, (nint)b * blockSize);
            ref float output = ref g[b * Lanes];
            if (Vector512.IsHardwareAccelerated)
            {
                var acc = Vector512<float>.Zero;
                for (int k = 0; k < probes; k++)
                    acc = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref block, (nuint)(k * Lanes)), Vector512.Create(Unsafe.Add(ref c, k)), acc);
                (acc * scale).StoreUnsafe(ref output);
            }
            else if (Vector256.IsHardwareAccelerated)
            {
                Vector256<float> low = Vector256<float>.Zero, high = Vector256<float>.Zero;
                for (int k = 0; k < probes; k++)
                {
                    var ck = Vector256.Create(Unsafe.Add(ref c, k));
                    low = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref block, (nuint)(k * Lanes)), ck, low);
                    high = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref block, (nuint)(k * Lanes + 8)), ck, high);
                }

                (low * scale).StoreUnsafe(ref output);
                (high * scale).StoreUnsafe(ref output, 8);
            }
            else
            {
                ScalarBlock(ref block, coefs, scale, g.Slice(b * Lanes, Lanes));
            }
        }

        int rest = g.Length - fullBlocks * Lanes;
        if (rest > 0) ScalarBlock(ref Unsafe.Add(ref first, (nint)fullBlocks * blockSize), coefs, scale, g.Slice(fullBlocks * Lanes, rest));

        // A finite sum proves every term finite; only the rare overflow pays for the scan.
        return ZeroNonFinite(g);
    }

    /// <summary>
    /// <see cref="Rebuild"/> for four examples at once: each basis load feeds four fused
    /// multiply-adds, so the basis chunk is read from cache a quarter as often. Every lane follows
    /// the same operation order as <see cref="Rebuild"/>, so the values are bit-identical to it.
    /// </summary>
    public static void Rebuild4(
        ReadOnlySpan<float> c0, ReadOnlySpan<float> c1, ReadOnlySpan<float> c2, ReadOnlySpan<float> c3,
        float[] basis, int firstDim, Span<float> g0, Span<float> g1, Span<float> g2, Span<float> g3, Span<bool> bad)
    {
        int len = g0.Length;
        int probes = c0.Length;
        int fullBlocks = Vector512.IsHardwareAccelerated ? len / Lanes : 0;
        if (fullBlocks > 0)
        {
            float scale = 1f / probes;
            int blockSize = probes * Lanes;
            ref float first = ref basis[(long)(firstDim / Lanes) * blockSize];
            for (int b = 0; b < fullBlocks; b++)
            {
                ref float block = ref Unsafe.Add(ref first, (nint)b * blockSize);
                Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (int k = 0; k < probes; k++)
                {
                    var z = Vector512.LoadUnsafe(ref block, (nuint)(k * Lanes));
                    a0 = Vector512.FusedMultiplyAdd(z, Vector512.Create(c0[k]), a0);
                    a1 = Vector512.FusedMultiplyAdd(z, Vector512.Create(c1[k]), a1);
                    a2 = Vector512.FusedMultiplyAdd(z, Vector512.Create(c2[k]), a2);
                    a3 = Vector512.FusedMultiplyAdd(z, Vector512.Create(c3[k]), a3);
                }

                int at = b * Lanes;
                (a0 * scale).StoreUnsafe(ref g0[at]);
                (a1 * scale).StoreUnsafe(ref g1[at]);
                (a2 * scale).StoreUnsafe(ref g2[at]);
                (a3 * scale).StoreUnsafe(ref g3[at]);
            }
        }

        // The unblocked tail (and machines without 512-bit vectors) take the one-row path.
        int done = fullBlocks * Lanes;
        int tailDim = firstDim + done;
        bad[0] = Rebuild(c0, basis, tailDim, g0[done..]) | ZeroNonFinite(g0[..done]);
        bad[1] = Rebuild(c1, basis, tailDim, g1[done..]) | ZeroNonFinite(g1[..done]);
        bad[2] = Rebuild(c2, basis, tailDim, g2[done..]) | ZeroNonFinite(g2[..done]);
        bad[3] = Rebuild(c3, basis, tailDim, g3[done..]) | ZeroNonFinite(g3[..done]);
    }

    /// <summary>Zeroes non-finite values; true when there were any.</summary>
    private static bool ZeroNonFinite(Span<float> g) => !g.IsEmpty && !float.IsFinite(TensorPrimitives.Sum<float>(g)) && ReplaceNonFinite(g);

    private static void ScalarBlock(ref float block, ReadOnlySpan<float> coefs, float scale, Span<float> output)
    {
        for (int lane = 0; lane < output.Length; lane++)
        {
            float acc = 0f;
            for (int k = 0; k < coefs.Length; k++) acc = MathF.FusedMultiplyAdd(Unsafe.Add(ref block, k * Lanes + lane), coefs[k], acc);
            output[lane] = acc * scale;
        }
    }

    /// <summary>
    /// A clean copy of the coefficient matrix with NaN/infinity set to 0, and for every row whether it
    /// was degenerate (non-finite somewhere, or all zero: an example that was never sketched).
    /// </summary>
    public static float[] Sanitize(float[] coefficients, int rows, int probes, bool[] degenerate)
    {
        var clean = (float[])coefficients.Clone();
        for (int r = 0; r < rows; r++)
        {
            Span<float> row = clean.AsSpan(r * probes, probes);
            bool nonFinite = ReplaceNonFinite(row);
            degenerate[r] = nonFinite || !row.ContainsAnyExcept(0f);
        }

        return clean;
    }

    private static bool ReplaceNonFinite(Span<float> values)
    {
        bool any = false;
        for (int i = 0; i < values.Length; i++)
        {
            if (float.IsFinite(values[i])) continue;
            values[i] = 0f;
            any = true;
        }

        return any;
    }
}
