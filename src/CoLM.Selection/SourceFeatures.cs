using System.Numerics.Tensors;

namespace CoLM.Selection;

/// <summary>
/// The full-width passes of COLM.md steps 5-6 over D, done chunk by chunk: a chunk of every z_k
/// stays in cache while all examples use it, memory stays O(sources x D) instead of O(L x D)
/// (L x 327,680 floats would be most of a gigabyte), and chunks run on all cores with results that
/// do not depend on how they were scheduled.
/// </summary>
internal static class SourceFeatures
{
    // A multiple of SketchGradients.Lanes; 2048 dims of all K probes stay in L2.
    private const int Chunk = 2048;

    /// <summary>
    /// Adds to sums[slot * D + d] the sum of f_i[d] over the rows of each slot (the mean up to a
    /// positive factor, which does not change the top-h order).
    /// </summary>
    public static void Sums(int[][] rowsBySlot, GradientFeatures features, AdamNormalizer normalizer, bool[] degenerate, float[] sums)
    {
        int dim = features.Dim;
        var correction = normalizer.BiasCorrection();
        float[] m = normalizer.M, v = normalizer.V;
        Parallel.For(0, ChunkCount(dim), () => new ChunkRows(), (chunk, _, g) =>
        {
            int offset = chunk * Chunk;
            int len = Math.Min(Chunk, dim - offset);
            for (int slot = 0; slot < rowsBySlot.Length; slot++)
            {
                int start = slot * dim + offset;
                g.ForEachRow(rowsBySlot[slot], features, offset, len, degenerate, (r, gi) =>
                {
                    if (normalizer.Normalize(gi, m.AsSpan(offset, len), v.AsSpan(offset, len), gi, correction)) degenerate[r] = true;
                    Span<float> sum = sums.AsSpan(start, len);
                    TensorPrimitives.Add(sum, gi, sum);
                });
            }

            return g;
        }, _ => { });
    }

    /// <summary>
    /// f_i restricted to the mask, one destination row per example: only the masked columns of z, m
    /// and v are gathered, so this costs K x h per example instead of K x D.
    /// </summary>
    public static void Masked(
        int[] rows, ReadOnlySpan<int> mask, GradientFeatures features, AdamNormalizer normalizer, bool[] degenerate, FeatureRows destination)
    {
        int h = mask.Length;
        var m = new float[h];
        var v = new float[h];
        for (int j = 0; j < h; j++)
        {
            m[j] = normalizer.M[mask[j]];
            v[j] = normalizer.V[mask[j]];
        }

        var correction = normalizer.BiasCorrection();
        if (features.Dense is { } dense)
        {
            int dim = features.Dim;
            int[] columns = mask.ToArray();
            Parallel.For(0, rows.Length, i =>
            {
                int r = rows[i];
                Span<float> f = destination.Row(i);
                ReadOnlySpan<float> g = dense.AsSpan(r * dim, dim);
                for (int j = 0; j < columns.Length; j++) f[j] = g[columns[j]];
                bool bad = GradientFeatures.CopyClean(f, f);
                bad |= normalizer.Normalize(f, m, v, f, correction);
                if (bad) degenerate[r] = true;
            });
            return;
        }

        int probes = features.Probes;
        float[] coefs = features.Coefficients!;
        float[] z = ProbeBasis.Gather(features.Basis!, probes, mask);
        Parallel.For(0, rows.Length, i =>
        {
            int r = rows[i];
            Span<float> f = destination.Row(i);
            bool bad = SketchGradients.Rebuild(coefs.AsSpan(r * probes, probes), z, 0, f);
            bad |= normalizer.Normalize(f, m, v, f, correction);
            if (bad) degenerate[r] = true;
        });
    }

    /// <summary>
    /// COLM.md step 5's history update: m, v become the mean of m_i, v_i over the selected rows, and
    /// the step count advances. No selected rows leaves the history untouched.
    /// </summary>
    public static void Absorb(int[] selectedRows, GradientFeatures features, AdamNormalizer normalizer, bool[] degenerate)
    {
        int dim = features.Dim;
        if (selectedRows.Length == 0) return;
        Parallel.For(0, ChunkCount(dim), () => new ChunkRows(), (chunk, _, g) =>
        {
            int offset = chunk * Chunk;
            int len = Math.Min(Chunk, dim - offset);
            float[] sumG = g.SumG, sumG2 = g.SumG2;
            Array.Clear(sumG);
            Array.Clear(sumG2);
            g.ForEachRow(selectedRows, features, offset, len, degenerate, (_, gi) =>
            {
                TensorPrimitives.Add(sumG.AsSpan(0, len), gi, sumG.AsSpan(0, len));
                TensorPrimitives.MultiplyAdd(gi, gi, sumG2.AsSpan(0, len), sumG2.AsSpan(0, len));
            });
            normalizer.AbsorbChunk(offset, sumG.AsSpan(0, len), sumG2.AsSpan(0, len), selectedRows.Length);
            return g;
        }, _ => { });
        normalizer.Advance();
    }

    /// <summary>
    /// ||g_i||^2 of each row, in double (raw features, no normalisation): per-chunk partial sums
    /// added in chunk order, so the result does not depend on scheduling.
    /// </summary>
    public static double[] SquaredNorms(int[] rows, GradientFeatures features, bool[] degenerate)
    {
        int dim = features.Dim;
        int chunks = ChunkCount(dim);
        var partial = new double[(long)chunks * rows.Length];
        Parallel.For(0, chunks, () => new ChunkRows(), (chunk, _, g) =>
        {
            int offset = chunk * Chunk;
            int len = Math.Min(Chunk, dim - offset);
            int i = 0;
            g.ForEachRow(rows, features, offset, len, degenerate, (_, gi) =>
            {
                double sum = 0;
                foreach (float x in gi) sum += (double)x * x;
                partial[(long)chunk * rows.Length + i++] = sum;
            });
            return g;
        }, _ => { });

        var norms = new double[rows.Length];
        for (int c = 0; c < chunks; c++)
            for (int i = 0; i < rows.Length; i++) norms[i] += partial[(long)c * rows.Length + i];
        return norms;
    }

    private static int ChunkCount(int dim) => (dim + Chunk - 1) / Chunk;

    private delegate void RowUse(int row, Span<float> g);

    /// <summary>
    /// One worker's buffers, reused across the chunks it runs, for rebuilding examples four at a
    /// time (see <see cref="SketchGradients.Rebuild4"/>).
    /// </summary>
    private sealed class ChunkRows
    {
        private readonly float[][] _g = [new float[Chunk], new float[Chunk], new float[Chunk], new float[Chunk]];
        private readonly bool[] _bad = new bool[4];

        public float[] SumG { get; } = new float[Chunk];

        public float[] SumG2 { get; } = new float[Chunk];

        /// <summary>Hands each row's g on [offset, offset + len) to <paramref name="use"/>, in row order.</summary>
        public void ForEachRow(int[] rows, GradientFeatures features, int offset, int len, bool[] degenerate, RowUse use)
        {
            if (features.Dense is { } dense)
            {
                Span<float> g = _g[0].AsSpan(0, len);
                foreach (int r in rows)
                {
                    if (GradientFeatures.CopyClean(dense.AsSpan(r * features.Dim + offset, len), g)) degenerate[r] = true;
                    use(r, g);
                }
            }
            else
            {
                ForEachRebuilt(rows, features.Coefficients!, features.Probes, features.Basis!, offset, len, degenerate, use);
            }
        }

        /// <summary>Rebuilds each row's g on [offset, offset + len), in row order, and hands it to <paramref name="use"/>.</summary>
        private void ForEachRebuilt(
            int[] rows, float[] coefs, int probes, float[] basis, int offset, int len, bool[] degenerate, RowUse use)
        {
            Span<float> g0 = _g[0].AsSpan(0, len), g1 = _g[1].AsSpan(0, len), g2 = _g[2].AsSpan(0, len), g3 = _g[3].AsSpan(0, len);
            int i = 0;
            for (; i + 4 <= rows.Length; i += 4)
            {
                SketchGradients.Rebuild4(
                    Row(coefs, rows[i], probes), Row(coefs, rows[i + 1], probes), Row(coefs, rows[i + 2], probes), Row(coefs, rows[i + 3], probes),
                    basis, offset, g0, g1, g2, g3, _bad);
                for (int j = 0; j < 4; j++)
                    if (_bad[j]) degenerate[rows[i + j]] = true;
                use(rows[i], g0);
                use(rows[i + 1], g1);
                use(rows[i + 2], g2);
                use(rows[i + 3], g3);
            }

            for (; i < rows.Length; i++)
            {
                if (SketchGradients.Rebuild(Row(coefs, rows[i], probes), basis, offset, g0)) degenerate[rows[i]] = true;
                use(rows[i], g0);
            }
        }

        private static ReadOnlySpan<float> Row(float[] coefs, int row, int probes) => coefs.AsSpan(row * probes, probes);
    }
}
