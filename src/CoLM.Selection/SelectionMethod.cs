namespace CoLM.Selection;

/// <summary>How the coordinator turns a pool of L examples into the batch that is trained on.</summary>
public enum SelectionMethod
{
    /// <summary>CoLM: keep small sources, facility location on sketched gradient features for the rest.</summary>
    Colm,

    /// <summary>Uniform sample of b examples without replacement: the cheap baseline.</summary>
    Random,

    /// <summary>Train on the whole pool of L: the memory-hungry baseline CoLM tries to match.</summary>
    BigBatch,
}
