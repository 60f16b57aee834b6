using BenchmarkDotNet.Attributes;

namespace CoLM.Selection.Benchmarks;

/// <summary>
/// COLM.md step 7 alone: lazy-greedy facility location choosing L/2 of L rows of h dims. The cost
/// is the [L x L] L1 distance matrix (L^2 h) plus the greedy over it (about L^2 per pick that is
/// re-evaluated), and an L^2 floats similarity buffer allocated per call by this public entry.
/// </summary>
// Few iterations on purpose: the machine this was tuned on has 2 cores, and 2 warm-ups + 5
// measured iterations keep the whole suite to a few minutes with errors still well under 10%.
[SimpleJob(launchCount: 1, warmupCount: 2, iterationCount: 5)]
[MemoryDiagnoser]
public class FacilityLocationBenchmarks
{
    private float[] _features = [];

    /// <summary>L, the rows to choose from (the pool, or one large source's share of it).</summary>
    [Params(128, 512, 2048)]
    public int L { get; set; }

    /// <summary>h, the feature width after per-source sparsification (reference: 2560).</summary>
    [Params(256, 2560)]
    public int H { get; set; }

    [GlobalSetup]
    public void Setup() => _features = SyntheticInputs.ClusteredRows(L, H, clusters: 16, seed: 1234);

    [Benchmark]
    public int[] LazyGreedy() => FacilityLocation.LazyGreedy(_features, L, H, L / 2);
}
