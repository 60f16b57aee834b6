using CoLM.Determinism;
using Xunit;

namespace CoLM.Selection.Tests;

public class SelectionMethodBehaviourTests
{
    private const int Dim = 700;
    private const int Probes = 6;
    private static readonly int[] Counts = [5, 30, 3, 18, 8];
    private static readonly bool[] Small = [true, false, true, false, false];
    private static readonly bool[] NoneSmall = [false, false, false, false, false];
    private const int SmallInPool = 8;

    private static readonly SelectionMethod[] Balanceable =
        [SelectionMethod.Colm, SelectionMethod.SourceBalancedRandom, SelectionMethod.BigLoss, SelectionMethod.SmallLoss, SelectionMethod.GradNorm];

    public static TheoryData<SelectionMethod, bool, int> EveryMethodBalancingAndBudget()
    {
        var data = new TheoryData<SelectionMethod, bool, int>();
        foreach (SelectionMethod m in Enum.GetValues<SelectionMethod>())
            foreach (bool balanced in new[] { true, false })
                foreach (int b in new[] { 0, 1, 6, 9, 31, 63, 64, 200 })
                    data.Add(m, balanced, b);
        return data;
    }

    public static TheoryData<SelectionMethod, int> BalanceableMethodsAndBudgets()
    {
        var data = new TheoryData<SelectionMethod, int>();
        foreach (SelectionMethod m in Balanceable)
            foreach (int b in new[] { 12, 24, 40 })
                data.Add(m, b);
        return data;
    }

    /// <summary>
    /// A pool where every row, small sources included, was sketched (as the caller does when
    /// balancing is off); source ids are those of the same seed's ordinary pool.
    /// </summary>
    private static PoolSketch FullySketched(int seed) => TestPools.Pool(Counts, NoneSmall, Probes, Dim, seed);

    [Theory]
    [MemberData(nameof(EveryMethodBalancingAndBudget))]
    public void Every_method_returns_exactly_its_budget_without_repeats(SelectionMethod method, bool balanced, int budget)
    {
        PoolSketch pool = TestPools.Pool(Counts, Small, Probes, Dim, seed: 1);
        var selector = new CoresetSelector(TestPools.Options(method, balanced), Small, Dim);

        CoresetSelection s = selector.Select(pool, budget, rngSeed: 5);

        int expected = method == SelectionMethod.BigBatch ? pool.Count : Math.Min(budget, pool.Count);
        Assert.Equal(expected, s.ExampleIds.Length);
        Assert.Equal(expected, s.ExampleIds.Distinct().Count());
        Assert.All(s.ExampleIds, id => Assert.Contains(id, pool.ExampleIds));
        Assert.Equal(expected, s.Weights.Length);
        Assert.All(s.Weights, w => Assert.Equal(1f, w));
        Assert.Equal(expected, s.SelectedPerSource.Sum());
        bool keeps = balanced && Balanceable.Contains(method);
        if (!keeps) Assert.Equal(0, s.KeptSmall);
        if (method != SelectionMethod.Colm) Assert.Equal(0, selector.ExportNormalizer().Step);
    }

    [Theory]
    [MemberData(nameof(BalanceableMethodsAndBudgets))]
    public void With_balancing_every_small_source_example_is_kept_and_large_sources_get_the_allocator_budgets(SelectionMethod method, int budget)
    {
        PoolSketch pool = TestPools.Pool(Counts, Small, Probes, Dim, seed: 2);
        var selector = new CoresetSelector(TestPools.Options(method), Small, Dim);
        BudgetAllocation plan = BudgetAllocator.Allocate(pool.SourceIds, Small, budget, 9, SourceBalance.Default);

        CoresetSelection s = selector.Select(pool, budget, rngSeed: 9);

        int[] rows = TestPools.PoolIndices(pool, s);
        int[] smallRows = Enumerable.Range(0, pool.Count).Where(i => Small[pool.SourceIds[i]]).ToArray();
        Assert.Equal(SmallInPool, s.KeptSmall);
        Assert.Equal(smallRows, rows.Take(s.KeptSmall));
        for (int q = 0; q < Counts.Length; q++)
            Assert.Equal(Small[q] ? Counts[q] : plan.PerSourceBudget[q], s.SelectedPerSource[q]);
        // After the kept ones, the selected ones come by source id.
        int[] selectedSources = rows.Skip(s.KeptSmall).Select(i => pool.SourceIds[i]).ToArray();
        Assert.Equal(selectedSources.Order(), selectedSources);
    }

    [Theory]
    [InlineData(SelectionMethod.Colm)]
    [InlineData(SelectionMethod.SourceBalancedRandom)]
    [InlineData(SelectionMethod.BigLoss)]
    [InlineData(SelectionMethod.SmallLoss)]
    [InlineData(SelectionMethod.GradNorm)]
    public void With_balancing_and_more_small_examples_than_room_the_allocator_sample_is_kept_and_the_large_sources_keep_their_reserve(SelectionMethod method)
    {
        PoolSketch pool = TestPools.Pool(Counts, Small, Probes, Dim, seed: 3);
        var selector = new CoresetSelector(TestPools.Options(method), Small, Dim);

        CoresetSelection s = selector.Select(pool, 6, rngSeed: 4);

        // Three large sources reserve R = 3 of b = 6: three small examples kept, one chosen per large source.
        BudgetAllocation plan = BudgetAllocator.Allocate(pool.SourceIds, Small, 6, 4, SourceBalance.Default);
        Assert.Equal(3, s.KeptSmall);
        Assert.Equal(plan.KeptIndices, TestPools.PoolIndices(pool, s).Take(s.KeptSmall));
        Assert.Equal(plan.SmallLeftOut, s.SmallLeftOut);
        Assert.Equal([1, 1, 1], new[] { s.SelectedPerSource[1], s.SelectedPerSource[3], s.SelectedPerSource[4] });
    }

    [Theory]
    [InlineData(SelectionMethod.BigLoss)]
    [InlineData(SelectionMethod.SmallLoss)]
    [InlineData(SelectionMethod.GradNorm)]
    [InlineData(SelectionMethod.Colm)]
    public void Without_balancing_small_sources_are_not_forced_in(SelectionMethod method)
    {
        PoolSketch pool = FullySketched(seed: 4);
        bool[] isSmallRow = pool.SourceIds.Select(q => Small[q]).ToArray();
        // Make the small-source rows the least attractive to each ranking method.
        float[] losses = pool.Losses.Select((l, i) => isSmallRow[i] ? (method == SelectionMethod.SmallLoss ? 100f : -1f) : l).ToArray();
        float[] coefficients = (float[])pool.Coefficients.Clone();
        if (method == SelectionMethod.GradNorm)
            for (int i = 0; i < pool.Count; i++)
                if (isSmallRow[i])
                    for (int k = 0; k < Probes; k++) coefficients[i * Probes + k] *= 1e-3f;
        pool = pool with { Losses = losses, Coefficients = coefficients };
        var selector = new CoresetSelector(TestPools.Options(method, balanced: false), Small, Dim);

        CoresetSelection s = selector.Select(pool, 12, rngSeed: 1);

        Assert.Equal(12, s.ExampleIds.Length);
        Assert.Equal(0, s.KeptSmall);
        int smallChosen = s.SelectedPerSource[0] + s.SelectedPerSource[2];
        if (method == SelectionMethod.Colm) Assert.True(smallChosen < SmallInPool, $"{smallChosen} small-source examples chosen");
        else Assert.Equal(0, smallChosen);
        Assert.Equal(0, s.DegenerateFeatures);
    }

    [Fact]
    public void Without_balancing_every_row_is_a_candidate_so_unsketched_small_rows_count_as_degenerate()
    {
        PoolSketch pool = TestPools.Pool(Counts, Small, Probes, Dim, seed: 5); // small rows all zero
        var balanced = new CoresetSelector(TestPools.Options(SelectionMethod.GradNorm), Small, Dim);
        var unbalanced = new CoresetSelector(TestPools.Options(SelectionMethod.GradNorm, balanced: false), Small, Dim);

        Assert.Equal(0, balanced.Select(pool, 20, 0).DegenerateFeatures);
        Assert.Equal(SmallInPool, unbalanced.Select(pool, 20, 0).DegenerateFeatures);
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(false, false)]
    public void Big_and_small_loss_pick_exactly_the_highest_or_lowest_losses_within_each_group(bool largest, bool balanced)
    {
        PoolSketch pool = FullySketched(seed: 6);
        SelectionMethod method = largest ? SelectionMethod.BigLoss : SelectionMethod.SmallLoss;
        var selector = new CoresetSelector(TestPools.Options(method, balanced), Small, Dim);
        const int budget = 27;

        int[] chosen = TestPools.PoolIndices(pool, selector.Select(pool, budget, rngSeed: 3));

        int[] Ranked(IEnumerable<int> rows, int count) =>
            (largest ? rows.OrderByDescending(i => pool.Losses[i]) : rows.OrderBy(i => pool.Losses[i])).Take(count).Order().ToArray();
        if (balanced)
        {
            BudgetAllocation plan = BudgetAllocator.Allocate(pool.SourceIds, Small, budget, 3, SourceBalance.Default);
            for (int q = 0; q < Counts.Length; q++)
            {
                if (Small[q]) continue;
                int[] rows = Enumerable.Range(0, pool.Count).Where(i => pool.SourceIds[i] == q).ToArray();
                Assert.Equal(Ranked(rows, plan.PerSourceBudget[q]), chosen.Where(i => pool.SourceIds[i] == q));
            }
        }
        else
        {
            Assert.Equal(Ranked(Enumerable.Range(0, pool.Count), budget), chosen.Order());
        }
    }

    [Fact]
    public void Loss_ties_go_to_the_lower_pool_index_and_nan_losses_rank_last_in_both_orders()
    {
        float[] losses = [1f, 2f, 2f, float.NaN, 2f, 0f];
        var pool = new PoolSketch([10, 11, 12, 13, 14, 15], new int[6], losses, [], 0, 0, Dim);
        CoresetSelection Pick(SelectionMethod m, int b) => new CoresetSelector(TestPools.Options(m), [false], Dim).Select(pool, b, 0);

        Assert.Equal([11, 12], Pick(SelectionMethod.BigLoss, 2).ExampleIds);
        Assert.Equal([10, 15], Pick(SelectionMethod.SmallLoss, 2).ExampleIds);
        Assert.DoesNotContain(13, Pick(SelectionMethod.BigLoss, 5).ExampleIds);
        Assert.DoesNotContain(13, Pick(SelectionMethod.SmallLoss, 5).ExampleIds);
        Assert.Equal(6, Pick(SelectionMethod.BigLoss, 6).ExampleIds.Length);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Grad_norm_picks_the_largest_rebuilt_gradient_norms(bool balanced)
    {
        PoolSketch pool = FullySketched(seed: 7);
        var selector = new CoresetSelector(TestPools.Options(SelectionMethod.GradNorm, balanced), Small, Dim);
        const int budget = 25;
        // Reference norms in double, straight from the probe directions.
        var z = new float[Probes][];
        for (int k = 0; k < Probes; k++) ProbeDirections.Fill(pool.ProbeSeed, k, z[k] = new float[Dim]);
        double[] norm = Enumerable.Range(0, pool.Count).Select(i =>
            Math.Sqrt(Enumerable.Range(0, Dim).Sum(d =>
            {
                double g = Enumerable.Range(0, Probes).Sum(k => (double)pool.Coefficients[i * Probes + k] * z[k][d]) / Probes;
                return g * g;
            }))).ToArray();

        int[] chosen = TestPools.PoolIndices(pool, selector.Select(pool, budget, rngSeed: 8));

        int[] Ranked(IEnumerable<int> rows, int count) => rows.OrderByDescending(i => norm[i]).Take(count).Order().ToArray();
        if (balanced)
        {
            BudgetAllocation plan = BudgetAllocator.Allocate(pool.SourceIds, Small, budget, 8, SourceBalance.Default);
            for (int q = 0; q < Counts.Length; q++)
            {
                if (Small[q]) continue;
                int[] rows = Enumerable.Range(0, pool.Count).Where(i => pool.SourceIds[i] == q).ToArray();
                Assert.Equal(Ranked(rows, plan.PerSourceBudget[q]), chosen.Where(i => pool.SourceIds[i] == q));
            }
        }
        else
        {
            Assert.Equal(Ranked(Enumerable.Range(0, pool.Count), budget), chosen.Order());
        }
    }

    [Fact]
    public void Grad_norm_on_dense_features_counts_nan_and_zero_rows_as_degenerate_with_norm_zero()
    {
        const int rows = 6;
        float[] scale = [1f, 5f, 3f, 4f, 0f, float.NaN];
        float[] direction = TestPools.Gaussian(Dim, 11);
        var dense = new float[rows * Dim];
        for (int r = 0; r < rows; r++)
            for (int d = 0; d < Dim; d++) dense[r * Dim + d] = scale[r] * direction[d];
        var pool = new PoolSketch(Enumerable.Range(0, rows).ToArray(), new int[rows], new float[rows], [], 0, 0, Dim) { Features = dense };
        var selector = new CoresetSelector(TestPools.Options(SelectionMethod.GradNorm), [false], Dim);

        CoresetSelection three = selector.Select(pool, 3, 0);
        CoresetSelection five = selector.Select(pool, 5, 0);

        Assert.Equal([1, 2, 3], three.ExampleIds);
        Assert.Equal(2, three.DegenerateFeatures);
        // Rows 4 (zero) and 5 (NaN) both have norm 0; the tie goes to the lower index.
        Assert.Equal([0, 1, 2, 3, 4], five.ExampleIds);
    }

    public static TheoryData<SelectionMethod, bool, CoresetWeighting> FeatureMethods()
    {
        var data = new TheoryData<SelectionMethod, bool, CoresetWeighting>();
        foreach (bool balanced in new[] { true, false })
        {
            data.Add(SelectionMethod.Colm, balanced, CoresetWeighting.Uniform);
            data.Add(SelectionMethod.Colm, balanced, CoresetWeighting.Medoid);
            data.Add(SelectionMethod.GradNorm, balanced, CoresetWeighting.Uniform);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(FeatureMethods))]
    public void Dense_features_give_the_same_choice_as_coefficients_that_rebuild_them(SelectionMethod method, bool balanced, CoresetWeighting weighting)
    {
        SelectionOptions options = TestPools.Options(method, balanced, weighting);
        var fromSketch = new CoresetSelector(options, Small, Dim);
        var fromDense = new CoresetSelector(options, Small, Dim);

        for (int step = 0; step < 3; step++)
        {
            PoolSketch pool = FullySketched(seed: 30 + step) with { ProbeSeed = 100 + step };
            PoolSketch dense = pool with { Features = TestPools.DenseFeatures(pool), Coefficients = [], Probes = 0, ProbeSeed = 0 };
            CoresetSelection a = fromSketch.Select(pool, 20, step), b = fromDense.Select(dense, 20, step);
            Assert.Equal(a.ExampleIds, b.ExampleIds);
            Assert.Equal(a.Weights, b.Weights);
            Assert.Equal(a.DegenerateFeatures, b.DegenerateFeatures);
        }

        Assert.Equal(fromSketch.ExportNormalizer().M, fromDense.ExportNormalizer().M);
        Assert.Equal(fromSketch.ExportNormalizer().V, fromDense.ExportNormalizer().V);
    }

    [Theory]
    [InlineData(true, 24)]
    [InlineData(true, 40)]
    [InlineData(false, 12)]
    [InlineData(false, 40)]
    public void Medoid_weights_are_at_least_one_and_sum_to_each_group_size(bool balanced, int budget)
    {
        PoolSketch pool = FullySketched(seed: 8);
        var selector = new CoresetSelector(TestPools.Options(SelectionMethod.Colm, balanced, CoresetWeighting.Medoid), Small, Dim);

        CoresetSelection s = selector.Select(pool, budget, rngSeed: 2);

        Assert.Equal(budget, s.ExampleIds.Length);
        Assert.All(s.Weights, w => Assert.True(w >= 1f && w == MathF.Round(w), $"weight {w}"));
        Assert.Contains(s.Weights, w => w > 1f);
        int[] rows = TestPools.PoolIndices(pool, s);
        if (!balanced)
        {
            Assert.Equal(pool.Count, s.Weights.Sum());
            return;
        }

        Assert.All(s.Weights.Take(s.KeptSmall), w => Assert.Equal(1f, w));
        BudgetAllocation plan = BudgetAllocator.Allocate(pool.SourceIds, Small, budget, 2, SourceBalance.Default);
        for (int q = 0; q < Counts.Length; q++)
        {
            if (Small[q] || plan.PerSourceBudget[q] == 0) continue;
            float sum = Enumerable.Range(0, rows.Length).Where(j => pool.SourceIds[rows[j]] == q).Sum(j => s.Weights[j]);
            Assert.Equal(Counts[q], sum);
        }
    }

    [Fact]
    public void Medoid_weights_count_the_members_of_each_gradient_cluster()
    {
        const int rows = 20;
        float[] noise = TestPools.Gaussian(rows * Probes, 4, 0.05f);
        var coefficients = new float[rows * Probes];
        for (int i = 0; i < rows; i++)
            for (int k = 0; k < Probes; k++)
                coefficients[i * Probes + k] = (i % 3 == 0 ? 1f : -1f) * (k % 2 == 0 ? 1f : -1f) + noise[i * Probes + k];
        var pool = new PoolSketch(Enumerable.Range(0, rows).ToArray(), new int[rows], new float[rows], coefficients, 8, Probes, Dim);
        var selector = new CoresetSelector(TestPools.Options(SelectionMethod.Colm, weighting: CoresetWeighting.Medoid), [false], Dim);

        CoresetSelection s = selector.Select(pool, 2, rngSeed: 0);

        // Two opposite gradient directions: 7 rows (i % 3 == 0) in one cluster, 13 in the other.
        var weightByCluster = s.ExampleIds.Select((id, j) => (Cluster: id % 3 == 0, Weight: s.Weights[j])).OrderBy(x => x.Cluster).ToArray();
        Assert.Equal([(false, 13f), (true, 7f)], weightByCluster);
    }

    [Fact]
    public void Nearest_counts_assign_each_row_to_its_nearest_selected_row_with_ties_to_the_lower_index()
    {
        float[] points = [0f, 1f, 2f, 10f, 1.5f, 5.5f, 5f, 10f];
        int n = points.Length;
        var sim = new float[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) sim[i * n + j] = 20f - Math.Abs(points[i] - points[j]);

        // Counts align with the order selected rows are given in. Row 6 (at 5) is as near 0 as 10: it goes to row 0.
        Assert.Equal([5, 3], FacilityLocation.NearestCounts(sim, n, [0, 3]));
        Assert.Equal([3, 5], FacilityLocation.NearestCounts(sim, n, [3, 0]));
        // Rows 3 and 7 are duplicates; both selected, each counts itself, and row 5 (at 5.5) goes to the lower, row 3.
        Assert.Equal([5, 1, 2], FacilityLocation.NearestCounts(sim, n, [0, 7, 3]));
    }

    [Theory]
    [MemberData(nameof(EveryMethodAndBalancing))]
    public void Every_method_is_deterministic_given_the_seed_and_the_selector_state(SelectionMethod method, bool balanced)
    {
        SelectionOptions options = TestPools.Options(method, balanced, CoresetWeighting.Medoid);
        var first = new CoresetSelector(options, Small, Dim);
        var second = new CoresetSelector(options, Small, Dim);

        for (int step = 0; step < 3; step++)
        {
            PoolSketch pool = FullySketched(seed: 50 + step) with { ProbeSeed = RandomStreams.ProbeSeed(1, step) };
            CoresetSelection a = first.Select(pool, 21, step), b = second.Select(pool, 21, step);
            Assert.Equal(a.ExampleIds, b.ExampleIds);
            Assert.Equal(a.Weights, b.Weights);
        }

        Assert.Equal(first.ExportNormalizer().M, second.ExportNormalizer().M);
        // Only CoLM moves the normaliser history.
        Assert.Equal(method == SelectionMethod.Colm ? 3 : 0, first.ExportNormalizer().Step);
    }

    public static TheoryData<SelectionMethod, bool> EveryMethodAndBalancing()
    {
        var data = new TheoryData<SelectionMethod, bool>();
        foreach (SelectionMethod m in Enum.GetValues<SelectionMethod>())
        {
            data.Add(m, true);
            data.Add(m, false);
        }

        return data;
    }

    [Fact]
    public void Source_balanced_random_varies_with_the_seed_and_without_balancing_is_plain_random()
    {
        PoolSketch pool = TestPools.Pool(Counts, Small, Probes, Dim, seed: 9);
        var balanced = new CoresetSelector(TestPools.Options(SelectionMethod.SourceBalancedRandom), Small, Dim);
        var unbalanced = new CoresetSelector(TestPools.Options(SelectionMethod.SourceBalancedRandom, balanced: false), Small, Dim);
        var random = new CoresetSelector(TestPools.Options(SelectionMethod.Random), Small, Dim);

        int[] a = balanced.Select(pool, 30, 1).ExampleIds;
        Assert.Contains(Enumerable.Range(2, 10), seed => !balanced.Select(pool, 30, seed).ExampleIds.SequenceEqual(a));
        // Every large-source row gets chosen under some seed: the draw is not a fixed prefix.
        var seen = Enumerable.Range(0, 40).SelectMany(seed => balanced.Select(pool, 30, seed).ExampleIds).ToHashSet();
        Assert.Equal(pool.Count, seen.Count);
        for (int seed = 0; seed < 5; seed++)
            Assert.Equal(random.Select(pool, 30, seed).ExampleIds, unbalanced.Select(pool, 30, seed).ExampleIds);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void With_one_probe_every_rebuilt_feature_is_collinear_as_in_the_reference_and_colm_still_returns_the_budget(bool balanced)
    {
        PoolSketch pool = FullySketched(seed: 10) with { Coefficients = TestPools.Gaussian(64, 12), Probes = 1, ProbeSeed = 42 };
        float[] g = TestPools.DenseFeatures(pool);
        double Dot(int a, int b) => Enumerable.Range(0, Dim).Sum(d => (double)g[a * Dim + d] * g[b * Dim + d]);
        double[] norms = Enumerable.Range(0, pool.Count).Select(i => Math.Sqrt(Dot(i, i))).ToArray();
        for (int a = 0; a < pool.Count; a++)
            for (int b = a + 1; b < pool.Count; b++)
                Assert.Equal(1.0, Math.Abs(Dot(a, b)) / (norms[a] * norms[b]), 1e-6);

        var selector = new CoresetSelector(TestPools.Options(SelectionMethod.Colm, balanced), Small, Dim);
        foreach (int budget in new[] { 1, 10, 30, 63 })
        {
            CoresetSelection s = selector.Select(pool, budget, rngSeed: budget);
            Assert.Equal(budget, s.ExampleIds.Length);
            Assert.Equal(budget, s.ExampleIds.Distinct().Count());
        }
    }

    [Fact]
    public void Pools_without_usable_features_or_with_misshapen_ones_are_rejected()
    {
        PoolSketch pool = TestPools.Pool(Counts, Small, Probes, Dim, seed: 11);
        var gradNorm = new CoresetSelector(TestPools.Options(SelectionMethod.GradNorm), Small, Dim);

        Assert.Throws<ArgumentException>(() => gradNorm.Select(pool with { Features = new float[10] }, 8, 0));
        var e = Assert.Throws<ArgumentException>(() => gradNorm.Select(pool with { Coefficients = [], Probes = 0 }, 20, 0));
        Assert.Contains("Probes = 0", e.Message);
        // Loss methods need no features at all.
        var bigLoss = new CoresetSelector(TestPools.Options(SelectionMethod.BigLoss, balanced: false), Small, Dim);
        Assert.Equal(20, bigLoss.Select(pool with { Coefficients = [], Probes = 0 }, 20, 0).ExampleIds.Length);
    }
}
