namespace CoLM.Collectives;

/// <summary>
/// How the trainers of one node reach their peers: the backend chosen for the run (in-process
/// when every trainer shares this process, a TCP ring between processes). It outlives trainer
/// restarts, so a restarted trainer rejoins the same communicator at the next generation.
/// </summary>
public interface IDataPlane : IDisposable
{
    /// <summary>Where peers reach local trainer <paramref name="localIndex"/>; announced to the coordinator ("" in-process).</summary>
    string EndpointOf(int localIndex);

    /// <summary>
    /// Starts generation <paramref name="generation"/> for local trainer <paramref name="localIndex"/>
    /// as rank <paramref name="rank"/> of <paramref name="peers"/> (each rank's endpoint) and returns
    /// its communicator. A trainer keeps the rank it was first given for the whole run.
    /// </summary>
    ICollective Join(int localIndex, int rank, long generation, IReadOnlyList<string> peers, CancellationToken cancellationToken = default);

    /// <summary>Breaks local trainer <paramref name="localIndex"/>'s current generation, waking peers blocked on it.</summary>
    void Abort(int localIndex, string reason);

    /// <summary>Breaks every local trainer's generation (the run is over or failed).</summary>
    void AbortAll(string reason);
}
