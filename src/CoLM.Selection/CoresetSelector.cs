namespace CoLM.Selection;

/// <summary>
/// Chooses the batch to train on from each pool, and owns the state that persists between steps
/// (the normalizer history, the probe basis cache). Calls are serialised: the history must see
/// selections one at a time and in order.
/// </summary>
public sealed class CoresetSelector
{
    private readonly SelectionOptions _options;
    private readonly bool[] _isSmallSource;
    private readonly int _featureDim;
    private readonly AdamNormalizer _normalizer;
    private readonly ColmSelection _colm;
    private readonly GradNormSelection _gradNorm;
    private readonly SourceBalance _balance;
    private readonly Lock _gate = new();

    /// <param name="options">Method and feature settings.</param>
    /// <param name="isSmallSource">Indexed by source id; ids beyond it count as large.</param>
    /// <param name="featureDim">D, the size of the gradient feature (and of the probe directions).</param>
    public CoresetSelector(SelectionOptions options, bool[] isSmallSource, int featureDim)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(isSmallSource);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(featureDim);
        options.Validate();
        _options = options;
        _isSmallSource = (bool[])isSmallSource.Clone();
        _featureDim = featureDim;
        _normalizer = new AdamNormalizer(featureDim, options);
        var basis = new ProbeBasis();
        var balance = new SourceBalance(options.SourceBalancing, options.LargeReserve);
        _balance = balance;
        _colm = new ColmSelection(_isSmallSource, featureDim, options.KeptDims(featureDim), balance, options.Weighting, _normalizer, basis);
        _gradNorm = new GradNormSelection(_isSmallSource, featureDim, balance, basis);
    }

    /// <summary>
    /// Picks exactly min(<paramref name="budget"/>, L) examples (all L for BigBatch), never fewer.
    /// Every random choice derives from <paramref name="rngSeed"/>: same selector state and inputs,
    /// same output. Only Colm reads and updates the normaliser history. See
    /// <see cref="SelectionMethod"/> and <see cref="SelectionOptions.SourceBalancing"/> for what
    /// each method chooses, and <see cref="SelectionMethods"/> for which rows need losses or features.
    /// </summary>
    public CoresetSelection Select(PoolSketch pool, int budget, long rngSeed)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentOutOfRangeException.ThrowIfNegative(budget);
        pool.Validate(_featureDim);
        int slots = SourceTable.SlotCount(pool.SourceIds, _isSmallSource.Length);
        lock (_gate)
        {
            return _options.Method switch
            {
                SelectionMethod.Colm => _colm.Select(pool, budget, rngSeed),
                SelectionMethod.Random => BaselineSelection.Random(pool, budget, rngSeed, slots),
                SelectionMethod.BigBatch => BaselineSelection.BigBatch(pool, slots),
                SelectionMethod.SourceBalancedRandom =>
                    BaselineSelection.SourceBalancedRandom(pool, _isSmallSource, budget, rngSeed, _balance),
                SelectionMethod.BigLoss =>
                    BaselineSelection.ByLoss(pool, _isSmallSource, budget, rngSeed, _balance, largest: true),
                SelectionMethod.SmallLoss =>
                    BaselineSelection.ByLoss(pool, _isSmallSource, budget, rngSeed, _balance, largest: false),
                SelectionMethod.GradNorm => _gradNorm.Select(pool, budget, rngSeed),
                _ => throw new InvalidOperationException($"Unknown selection method {_options.Method}."),
            };
        }
    }

    /// <summary>A deep copy of the normalizer history, for checkpoints.</summary>
    public NormalizerState ExportNormalizer()
    {
        lock (_gate) return _normalizer.Export();
    }

    /// <summary>Replaces the history with a copy of <paramref name="state"/>; throws ArgumentException when it does not fit.</summary>
    public void RestoreNormalizer(NormalizerState state)
    {
        lock (_gate) _normalizer.Restore(state);
    }
}
