namespace CoLM.Selection;

/// <summary>The batch chosen from one pool.</summary>
/// <param name="ExampleIds">Dataset ids to train on: kept small-source examples first, then the selected ones by source id.</param>
/// <param name="Weights">Per-example loss weight, aligned with <paramref name="ExampleIds"/> (uniform 1.0).</param>
/// <param name="SelectedPerSource">How many of <paramref name="ExampleIds"/> come from each source, indexed by source id (kept ones included).</param>
/// <param name="KeptSmall">How many small-source examples were kept without selection.</param>
/// <param name="DegenerateFeatures">Large-source pool examples whose sketch had NaN/infinite values or was all zero; they stayed candidates with zeros in place.</param>
public sealed record CoresetSelection(
    int[] ExampleIds,
    float[] Weights,
    int[] SelectedPerSource,
    int KeptSmall,
    int DegenerateFeatures);
