namespace CoLM.Selection;

/// <summary>
/// How the coordinator turns a pool of L examples into the batch that is trained on (COLM.md
/// "Alternatives a user can choose"). Every method returns exactly min(b, L) examples (BigBatch: all
/// L), never fewer, and is deterministic given the call's seed and the selector's state. The
/// methods that choose within sources follow <see cref="SelectionOptions.SourceBalancing"/>.
/// </summary>
public enum SelectionMethod
{
    /// <summary>
    /// CoLM. Balanced: keep small sources, facility location on normalised, per-source sparsified
    /// gradient features within each large source to its budget. Unbalanced: one facility location
    /// over the whole pool, the mask taken from the whole pool's mean feature.
    /// </summary>
    Colm,

    /// <summary>Uniform sample of b examples without replacement: the cheap baseline. Ignores source balancing.</summary>
    Random,

    /// <summary>Train on the whole pool of L: the memory-hungry baseline CoLM tries to match. Ignores source balancing.</summary>
    BigBatch,

    /// <summary>
    /// Balanced: keep small sources, a uniform random b_q within each large source (an honest
    /// strong baseline). Unbalanced: identical to <see cref="Random"/>.
    /// </summary>
    SourceBalancedRandom,

    /// <summary>The examples with the highest loss (within each large source when balanced), ties to the lower pool index.</summary>
    BigLoss,

    /// <summary>The examples with the lowest loss (within each large source when balanced), ties to the lower pool index.</summary>
    SmallLoss,

    /// <summary>
    /// The examples whose raw gradient feature g_i (not normalised) has the largest L2 norm (within
    /// each large source when balanced), ties to the lower pool index.
    /// </summary>
    GradNorm,
}
