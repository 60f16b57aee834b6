namespace CoLM.Selection;

/// <summary>The loss weight each selected example trains with (COLM.md step 7).</summary>
public enum CoresetWeighting
{
    /// <summary>Every example weight 1: the reference's choice and the default.</summary>
    Uniform,

    /// <summary>
    /// CoLM only (every other method weights 1): a selected example weighs the number of pool
    /// examples of its facility-location group (its source when balanced, the whole pool when not)
    /// whose nearest selected example, by L1 distance on the masked features, it is, itself
    /// included. The weights of one group sum to that group's pool count; kept small-source
    /// examples, and groups that fit their budget whole, weigh 1 each. The paper found this
    /// slightly worse than uniform.
    /// </summary>
    Medoid,
}
