namespace CoLM.Collectives;

/// <summary>
/// Everything one generation of the in-process group owns. A new generation gets a fresh instance,
/// so a straggler still finishing a call of the old generation only ever touches the old one.
/// Guarded by the group's lock.
/// </summary>
internal sealed class GenerationState
{
    public GenerationState(long generation, int worldSize)
    {
        Generation = generation;
        NextSequence = new long[worldSize];
        InFlight = new bool[worldSize];

        // Two slots suffice: a rank can enter call k+1 only after every rank entered call k, so by
        // the time anyone enters call k+2 every rank has left call k and its slot is free again.
        Slots = [new ExchangeSlot(worldSize), new ExchangeSlot(worldSize)];
    }

    public long Generation { get; }

    public ExchangeSlot[] Slots { get; }

    /// <summary>Per rank: the number of the call it will make next in this generation.</summary>
    public long[] NextSequence { get; }

    /// <summary>Per rank: a thread is inside a call for this rank (catches two threads sharing a rank).</summary>
    public bool[] InFlight { get; }

    /// <summary>
    /// Set once when the generation breaks (abort, timeout, cancellation, superseded); every rank
    /// waiting in or later entering a call throws a fresh exception made by it.
    /// </summary>
    public Func<Exception>? Fault { get; private set; }

    public void FaultOnce(Func<Exception> fault) => Fault ??= fault;
}
