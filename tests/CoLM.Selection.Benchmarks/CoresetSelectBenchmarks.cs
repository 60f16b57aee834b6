using BenchmarkDotNet.Attributes;
using CoLM.Determinism;

namespace CoLM.Selection.Benchmarks;

/// <summary>
/// The coordinator's whole selection step (COLM.md steps 2-7) as a run calls it: CoresetSelector.Select
/// with method Colm on a pool of L zeroth-order sketches (K = 8 coefficients per example), budget
/// b = L/2, 4 large sources and 6 small ones. The feature is Phi-2's (D = 327,680: the last layer's
/// V LoRA-B, 2560 x 128) and h = SparsifyCount dims are kept per source, so the facility location
/// inside sees exactly the widths of <see cref="FacilityLocationBenchmarks"/>.
/// </summary>
// Few iterations on purpose: 2 cores here; 2 warm-ups + 5 measured iterations keep the suite short.
[SimpleJob(launchCount: 1, warmupCount: 2, iterationCount: 5)]
[MemoryDiagnoser]
public class CoresetSelectBenchmarks
{
    private const int FeatureDim = 2560 * 128;
    private const int Probes = 8;
    // Ids 0-3 are large (85% of a pool), 4-9 small (2.5% each): the mixture shape of MathInstruct,
    // where most sources are small but most data is in a few large ones.
    private static readonly double[] SourceShare = [0.30, 0.25, 0.20, 0.10, 0.025, 0.025, 0.025, 0.025, 0.025, 0.025];
    private static readonly bool[] IsSmall = [false, false, false, false, true, true, true, true, true, true];

    private PoolSketch _pool = null!;
    private CoresetSelector _selector = null!;
    private long _step;

    /// <summary>L, the pool size; the budget is L/2.</summary>
    [Params(128, 512, 2048)]
    public int L { get; set; }

    /// <summary>h, the dims kept per large source (SparsifyCount).</summary>
    [Params(256, 2560)]
    public int H { get; set; }

    /// <summary>
    /// True: a new probe seed every call, as a default (`zo`) run does every step, so the K probe
    /// directions (K x D Gaussians) are regenerated inside the call. False: the same seed every call
    /// (the `paper` mode), the basis stays cached and only the selection itself is timed.
    /// </summary>
    [Params(true, false)]
    public bool FreshProbeSeed { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(4321);
        var sources = new int[L];
        for (int i = 0; i < L; i++) sources[i] = Draw(rng, SourceShare);
        // Coefficients: a per-source mean direction in probe space plus per-example noise, so
        // sources differ as real gradients do. Small-source rows stay zero: trainers never sketch them.
        float[] sourceMeans = SyntheticInputs.Gaussian(rng, SourceShare.Length * Probes, 1f);
        float[] coefficients = SyntheticInputs.Gaussian(rng, L * Probes, 0.5f);
        for (int i = 0; i < L; i++)
        {
            if (IsSmall[sources[i]]) Array.Clear(coefficients, i * Probes, Probes);
            else for (int k = 0; k < Probes; k++) coefficients[i * Probes + k] += sourceMeans[sources[i] * Probes + k];
        }

        float[] losses = SyntheticInputs.Gaussian(rng, L, 1f).Select(x => 1f + Math.Abs(x)).ToArray();
        int[] exampleIds = Enumerable.Range(0, L).Select(i => 10 * i).ToArray();
        _pool = new PoolSketch(exampleIds, sources, losses, coefficients, ProbeSeed: 99, Probes, FeatureDim);
        _selector = new CoresetSelector(new SelectionOptions(SelectionMethod.Colm, 0.01, SparsifyCount: H), IsSmall, FeatureDim);
        _step = 0;
    }

    [Benchmark]
    public CoresetSelection Select()
    {
        _step++;
        // `with` copies the record, not its arrays: a few bytes, not the pool.
        PoolSketch pool = FreshProbeSeed ? _pool with { ProbeSeed = RandomStreams.ProbeSeed(99, _step) } : _pool;
        return _selector.Select(pool, L / 2, rngSeed: _step);
    }

    private static int Draw(Random rng, double[] shares)
    {
        double u = rng.NextDouble();
        for (int q = 0; q < shares.Length - 1; q++)
        {
            u -= shares[q];
            if (u < 0) return q;
        }

        return shares.Length - 1;
    }
}
