using CoLM.Collectives;

namespace CoLM.Collectives.Tests;

/// <summary>
/// What the contract tests need from a backend: one handle per rank plus the group-level controls
/// (abort, new generation) that a supervisor uses. Each backend's test class adapts its own group.
/// </summary>
public abstract class CollectiveWorld : IDisposable
{
    public abstract int WorldSize { get; }

    public abstract ICollective Rank(int rank);

    public abstract void Abort(string reason);

    public abstract bool BeginGeneration(long generation);

    public abstract void Dispose();
}
