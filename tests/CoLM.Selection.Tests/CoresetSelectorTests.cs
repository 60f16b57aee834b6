using CoLM.Determinism;
using Xunit;

namespace CoLM.Selection.Tests;

public class CoresetSelectorTests
{
    private const int Dim = 700;
    private const int Probes = 6;
    private static readonly int[] Counts = [5, 30, 3, 18, 8];
    private static readonly bool[] Small = [true, false, true, false, false];

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(8)]
    [InlineData(9)]
    [InlineData(32)]
    [InlineData(63)]
    [InlineData(64)]
    [InlineData(200)]
    public void Colm_returns_exactly_the_budget_or_the_whole_pool_without_repeats(int budget)
    {
        PoolSketch pool = TestPools.Pool(Counts, Small, Probes, Dim, seed: 1);
        var selector = new CoresetSelector(TestPools.Colm(), Small, Dim);

        CoresetSelection s = selector.Select(pool, budget, rngSeed: 5);

        Assert.Equal(Math.Min(budget, pool.Count), s.ExampleIds.Length);
        Assert.Equal(s.ExampleIds.Length, s.ExampleIds.Distinct().Count());
        Assert.All(s.ExampleIds, id => Assert.Contains(id, pool.ExampleIds));
        Assert.Equal(s.ExampleIds.Length, s.Weights.Length);
        Assert.All(s.Weights, w => Assert.Equal(1f, w));
        Assert.Equal(s.ExampleIds.Length, s.SelectedPerSource.Sum());
    }

    [Theory]
    [InlineData(12)]
    [InlineData(24)]
    [InlineData(40)]
    public void Colm_follows_the_budget_allocation_per_source_and_orders_kept_first_then_by_source(int budget)
    {
        PoolSketch pool = TestPools.Pool(Counts, Small, Probes, Dim, seed: 2);
        var selector = new CoresetSelector(TestPools.Colm(), Small, Dim);
        BudgetAllocation plan = BudgetAllocator.Allocate(pool.SourceIds, Small, budget, 9, SourceBalance.Default);

        CoresetSelection s = selector.Select(pool, budget, rngSeed: 9);

        Assert.Equal(plan.KeptIndices.Length, s.KeptSmall);
        for (int q = 0; q < Counts.Length; q++)
        {
            int expected = Small[q] ? plan.KeptIndices.Count(i => pool.SourceIds[i] == q) : plan.PerSourceBudget[q];
            Assert.Equal(expected, s.SelectedPerSource[q]);
        }

        int[] sourceOrder = s.ExampleIds.Select(id => pool.SourceIds[Array.IndexOf(pool.ExampleIds, id)]).ToArray();
        Assert.All(sourceOrder.Take(s.KeptSmall), q => Assert.True(Small[q]));
        int[] selectedSources = sourceOrder.Skip(s.KeptSmall).ToArray();
        Assert.Equal(selectedSources.Order(), selectedSources);
    }

    [Fact]
    public void When_small_sources_would_fill_the_budget_a_sample_is_kept_and_the_large_sources_keep_their_reserve()
    {
        PoolSketch pool = TestPools.Pool(Counts, Small, Probes, Dim, seed: 3);
        var selector = new CoresetSelector(TestPools.Colm(), Small, Dim);

        CoresetSelection s = selector.Select(pool, 6, rngSeed: 1);

        // R = max(3 large sources, ceil(0.25 * 6)) = 3: before the reserve, 6 small examples took all of b.
        Assert.Equal(6, s.ExampleIds.Length);
        Assert.Equal(3, s.KeptSmall);
        Assert.Equal(Counts[0] + Counts[2] - 3, s.SmallLeftOut);
        Assert.Equal(3, s.SelectedPerSource[1] + s.SelectedPerSource[3] + s.SelectedPerSource[4]);
        Assert.Equal(1, selector.ExportNormalizer().Step);
    }

    [Fact]
    public void The_same_inputs_and_seed_give_the_same_selection_across_steps()
    {
        var first = new CoresetSelector(TestPools.Colm(), Small, Dim);
        var second = new CoresetSelector(TestPools.Colm(), Small, Dim);

        for (int step = 0; step < 4; step++)
        {
            PoolSketch pool = TestPools.Pool(Counts, Small, Probes, Dim, seed: 10 + step, probeSeed: RandomStreams.ProbeSeed(1, step));
            Assert.Equal(first.Select(pool, 20, step).ExampleIds, second.Select(pool, 20, step).ExampleIds);
        }

        NormalizerState a = first.ExportNormalizer(), b = second.ExportNormalizer();
        Assert.Equal(a.M, b.M);
        Assert.Equal(a.V, b.V);
        Assert.Equal(4, a.Step);
    }

    [Fact]
    public void Exporting_and_restoring_the_normalizer_makes_a_fresh_selector_continue_identically()
    {
        var original = new CoresetSelector(TestPools.Colm(), Small, Dim);
        for (int step = 0; step < 3; step++)
            original.Select(TestPools.Pool(Counts, Small, Probes, Dim, seed: 20 + step, probeSeed: step), 24, step);

        NormalizerState saved = original.ExportNormalizer();
        var restored = new CoresetSelector(TestPools.Colm(), Small, Dim);
        restored.RestoreNormalizer(saved);
        // The export is a deep copy: scribbling on it must not reach either selector.
        Array.Fill(saved.M, 123f);

        for (int step = 3; step < 6; step++)
        {
            PoolSketch pool = TestPools.Pool(Counts, Small, Probes, Dim, seed: 20 + step, probeSeed: step);
            Assert.Equal(original.Select(pool, 24, step).ExampleIds, restored.Select(pool, 24, step).ExampleIds);
        }

        Assert.Equal(original.ExportNormalizer().M, restored.ExportNormalizer().M);
        Assert.Equal(6, restored.ExportNormalizer().Step);
    }

    [Fact]
    public void The_normalizer_history_changes_the_features_so_a_fresh_selector_may_choose_differently()
    {
        var warmed = new CoresetSelector(TestPools.Colm(), Small, Dim);
        for (int step = 0; step < 5; step++)
            warmed.Select(TestPools.Pool(Counts, Small, Probes, Dim, seed: 40 + step, probeSeed: 3), 24, step);

        NormalizerState state = warmed.ExportNormalizer();
        Assert.Equal(5, state.Step);
        Assert.Contains(state.M, m => m != 0f);
        Assert.All(state.V, v => Assert.True(v >= 0f && float.IsFinite(v)));

        bool anyDiffers = Enumerable.Range(0, 6).Any(seed =>
        {
            PoolSketch pool = TestPools.Pool(Counts, Small, Probes, Dim, seed: 60 + seed, probeSeed: 3);
            var w = new CoresetSelector(TestPools.Colm(), Small, Dim);
            w.RestoreNormalizer(state);
            return !w.Select(pool, 24, 0).ExampleIds.SequenceEqual(
                new CoresetSelector(TestPools.Colm(), Small, Dim).Select(pool, 24, 0).ExampleIds);
        });
        Assert.True(anyDiffers);
    }

    [Fact]
    public void Restoring_a_normalizer_of_the_wrong_size_fails_with_a_clear_message()
    {
        var selector = new CoresetSelector(TestPools.Colm(), Small, Dim);

        var e = Assert.Throws<ArgumentException>(() => selector.RestoreNormalizer(new NormalizerState(new float[10], new float[Dim], 1)));
        Assert.Contains("length 10", e.Message);
        Assert.Contains(Dim.ToString(), e.Message);
        Assert.Throws<ArgumentException>(() => selector.RestoreNormalizer(new NormalizerState(new float[Dim], new float[Dim], -1)));
        Assert.Throws<ArgumentException>(() => selector.RestoreNormalizer(new NormalizerState(new float[Dim], Enumerable.Repeat(float.NaN, Dim).ToArray(), 1)));
    }

    [Fact]
    public void Nan_and_all_zero_sketch_rows_are_counted_and_stay_selectable()
    {
        // One large source: 11 rows with the same sketch (duplicates), one NaN row, one all-zero row.
        const int rows = 13;
        var coefficients = new float[rows * Probes];
        for (int i = 0; i < 11; i++)
            for (int k = 0; k < Probes; k++) coefficients[i * Probes + k] = k + 1;
        // Row 11: a distinct sketch with one NaN coefficient (zeroed, so still distinct); row 12 stays all zero.
        for (int k = 0; k < Probes; k++) coefficients[11 * Probes + k] = -(k + 1);
        coefficients[11 * Probes + 2] = float.NaN;
        var pool = new PoolSketch(
            Enumerable.Range(500, rows).ToArray(), new int[rows], new float[rows], coefficients, 4, Probes, Dim);
        var selector = new CoresetSelector(TestPools.Colm(), [false], Dim);

        CoresetSelection s = selector.Select(pool, 3, rngSeed: 0);

        Assert.Equal(2, s.DegenerateFeatures);
        Assert.Equal(3, s.ExampleIds.Length);
        // After one duplicate covers the cluster, the two degenerate rows are the only ones that add anything.
        Assert.Contains(511, s.ExampleIds);
        Assert.Contains(512, s.ExampleIds);
        Assert.All(selector.ExportNormalizer().M, m => Assert.True(float.IsFinite(m)));
    }

    [Fact]
    public void Colm_picks_one_example_per_gradient_cluster()
    {
        // A large source whose sketches form two clusters; budget 2 should cover both.
        const int rows = 20;
        float[] noise = TestPools.Gaussian(rows * Probes, 4, 0.05f);
        var coefficients = new float[rows * Probes];
        for (int i = 0; i < rows; i++)
            for (int k = 0; k < Probes; k++)
                coefficients[i * Probes + k] = (i % 2 == 0 ? (k % 2 == 0 ? 1f : -1f) : (k < 3 ? 1f : -1f)) + noise[i * Probes + k];
        var pool = new PoolSketch(
            Enumerable.Range(0, rows).ToArray(), new int[rows], new float[rows], coefficients, 8, Probes, Dim);
        var selector = new CoresetSelector(TestPools.Colm(), [false], Dim);

        CoresetSelection s = selector.Select(pool, 2, rngSeed: 0);

        Assert.Equal([0, 1], s.ExampleIds.Select(id => id % 2).Order());
    }

    [Fact]
    public void Random_selection_is_a_seeded_uniform_sample_of_the_budget()
    {
        PoolSketch pool = TestPools.Pool(Counts, Small, Probes, Dim, seed: 5);
        var selector = new CoresetSelector(new SelectionOptions(SelectionMethod.Random, 0.01, 0), Small, Dim);

        CoresetSelection a = selector.Select(pool, 16, rngSeed: 1);
        CoresetSelection again = selector.Select(pool, 16, rngSeed: 1);
        CoresetSelection other = selector.Select(pool, 16, rngSeed: 2);

        Assert.Equal(16, a.ExampleIds.Distinct().Count());
        Assert.Equal(a.ExampleIds, again.ExampleIds);
        Assert.NotEqual(a.ExampleIds, other.ExampleIds);
        Assert.Equal(0, a.KeptSmall);
        Assert.Equal(pool.Count, selector.Select(pool, 1000, 1).ExampleIds.Length);
        Assert.Equal(0, selector.ExportNormalizer().Step);
    }

    [Fact]
    public void Big_batch_returns_the_whole_pool_whatever_the_budget()
    {
        PoolSketch pool = TestPools.Pool(Counts, Small, Probes, Dim, seed: 6);
        var selector = new CoresetSelector(new SelectionOptions(SelectionMethod.BigBatch, 0.01, 0), Small, Dim);

        CoresetSelection s = selector.Select(pool, 4, rngSeed: 0);

        Assert.Equal(pool.ExampleIds, s.ExampleIds);
        Assert.Equal(Counts, s.SelectedPerSource);
    }

    [Fact]
    public void A_pool_that_disagrees_with_itself_or_the_selector_is_rejected()
    {
        var selector = new CoresetSelector(TestPools.Colm(), Small, Dim);
        PoolSketch pool = TestPools.Pool(Counts, Small, Probes, Dim, seed: 7);

        Assert.Throws<ArgumentException>(() => selector.Select(pool with { FeatureDim = Dim + 1 }, 8, 0));
        Assert.Throws<ArgumentException>(() => selector.Select(pool with { Coefficients = new float[3] }, 8, 0));
        Assert.Throws<ArgumentException>(() => selector.Select(pool with { Losses = new float[1] }, 8, 0));
        Assert.Throws<ArgumentException>(() => new CoresetSelector(new SelectionOptions(SelectionMethod.Colm, 0, 0), Small, Dim));
    }

    [Fact]
    public void The_sparsify_count_overrides_the_fraction_and_the_fraction_rounds_to_the_nearest_dim()
    {
        Assert.Equal(2560, new SelectionOptions(SelectionMethod.Colm, 0.01, 0).KeptDims(256_000));
        Assert.Equal(3277, new SelectionOptions(SelectionMethod.Colm, 0.01, 0).KeptDims(327_680));
        Assert.Equal(2560, new SelectionOptions(SelectionMethod.Colm, 0.01, 2560).KeptDims(327_680));
        Assert.Equal(1, new SelectionOptions(SelectionMethod.Colm, 0.01, 0).KeptDims(10));
        Assert.Equal(10, new SelectionOptions(SelectionMethod.Colm, 0.01, 50).KeptDims(10));
    }
}
