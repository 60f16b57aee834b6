using System.Diagnostics;

namespace CoLM.Training;

/// <summary>
/// How far a replica has got through its generation's collectives, readable from another thread:
/// every rank of a generation makes the same collectives in the same order, so a rank that has
/// not entered the collective its peers wait in is the one holding them up (hang detection).
/// </summary>
public sealed class CollectiveProgress
{
    private long _entered, _completed, _enteredAt;

    /// <summary>What another thread sees now: collectives entered and completed in this generation, and how long the current one has waited.</summary>
    public (long Entered, long Completed, TimeSpan Waiting) Read()
    {
        long entered = Interlocked.Read(ref _entered), completed = Interlocked.Read(ref _completed);
        var waiting = entered > completed ? Stopwatch.GetElapsedTime(Interlocked.Read(ref _enteredAt)) : TimeSpan.Zero;
        return (entered, completed, waiting);
    }

    internal void Reset()
    {
        Interlocked.Exchange(ref _entered, 0);
        Interlocked.Exchange(ref _completed, 0);
    }

    /// <summary>Counts <paramref name="collective"/> as entered, runs it, and counts it completed (also when it throws: the rank is no longer waiting).</summary>
    internal void Around(Action collective)
    {
        Interlocked.Exchange(ref _enteredAt, Stopwatch.GetTimestamp());
        Interlocked.Increment(ref _entered);
        try
        {
            collective();
        }
        finally
        {
            Interlocked.Increment(ref _completed);
        }
    }
}
