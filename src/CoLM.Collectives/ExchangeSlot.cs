using System.Text;

namespace CoLM.Collectives;

/// <summary>
/// One collective call as the in-process group sees it: what each rank brought (a pinned pointer,
/// a length, a root) and how far the call has got. Guarded by the group's lock, except the
/// per-rank arrays, which are read without it by the ranks while the call runs: they are written
/// before <see cref="Started"/> is set and not touched again until the slot is reused.
/// </summary>
internal sealed class ExchangeSlot
{
    private readonly bool[] _present;
    private readonly CollectiveOp[] _ops;
    private readonly int[] _lengths;
    private readonly int[] _roots;
    private SlotError _error;
    private string _errorMessage = "";

    public ExchangeSlot(int worldSize)
    {
        _present = new bool[worldSize];
        _ops = new CollectiveOp[worldSize];
        _lengths = new int[worldSize];
        _roots = new int[worldSize];
        Pointers = new nint[worldSize];
    }

    private enum SlotError
    {
        None,
        Argument,
        Mismatch,
    }

    /// <summary>Per-generation call number this slot hosts; -1 when never used.</summary>
    public long Sequence { get; private set; } = -1;

    public int Arrived { get; private set; }

    /// <summary>Ranks done with their share of the work (and so done touching peers' buffers).</summary>
    public int Finished { get; set; }

    /// <summary>Every rank arrived: the call will run (or fail validation) on all of them.</summary>
    public bool Started { get; private set; }

    /// <summary>Each rank's pinned buffer, as an address.</summary>
    public nint[] Pointers { get; }

    public int Length => _lengths[0];

    public int Root => _roots[0];

    public CollectiveOp Op => _ops[0];

    public bool HasError => _error != SlotError.None;

    public void Reset(long sequence)
    {
        Sequence = sequence;
        Arrived = 0;
        Finished = 0;
        Started = false;
        _error = SlotError.None;
        _errorMessage = "";
        Array.Clear(_present);
    }

    public void Arrive(int rank, CollectiveOp op, nint pointer, int length, int root)
    {
        _present[rank] = true;
        _ops[rank] = op;
        Pointers[rank] = pointer;
        _lengths[rank] = length;
        _roots[rank] = root;
        Arrived++;
    }

    public int[] MissingRanks()
    {
        var missing = new List<int>();
        for (var r = 0; r < _present.Length; r++)
        {
            if (!_present[r])
            {
                missing.Add(r);
            }
        }

        return [.. missing];
    }

    /// <summary>
    /// Called by the last rank to arrive. Checks what every rank brought, so a mismatch fails on
    /// every rank at once instead of leaving some of them waiting for a call that never matches.
    /// </summary>
    public void Start(long generation)
    {
        Started = true;
        var n = _ops.Length;
        if (!AllEqual(_ops))
        {
            Fail(SlotError.Mismatch, $"{Name(generation)}: ranks called different operations ({Describe(r => _ops[r].ToString())})");
        }
        else if (!AllEqual(_lengths))
        {
            Fail(SlotError.Argument, $"{Name(generation)}: buffer lengths differ across ranks ({Describe(r => _lengths[r].ToString())})");
        }
        else if (_ops[0] == CollectiveOp.Broadcast && (!AllEqual(_roots) || _roots[0] < 0 || _roots[0] >= n))
        {
            Fail(SlotError.Argument, $"{Name(generation)}: root must be the same on every rank and in [0, {n}) ({Describe(r => _roots[r].ToString())})");
        }
    }

    /// <summary>A fresh exception per rank: exceptions carry the thrower's stack trace.</summary>
    public Exception CreateError() => _error switch
    {
        SlotError.Argument => new ArgumentException(_errorMessage, "buffer"),
        SlotError.Mismatch => new InvalidOperationException(_errorMessage),
        _ => throw new InvalidOperationException("The call has no error."),
    };

    private static bool AllEqual<T>(T[] values)
        where T : struct
    {
        foreach (var v in values)
        {
            if (!EqualityComparer<T>.Default.Equals(v, values[0]))
            {
                return false;
            }
        }

        return true;
    }

    private string Name(long generation) => $"Call #{Sequence} in generation {generation}";

    private void Fail(SlotError error, string message)
    {
        _error = error;
        _errorMessage = message;
    }

    private string Describe(Func<int, string> value)
    {
        var text = new StringBuilder();
        for (var r = 0; r < _ops.Length; r++)
        {
            text.Append(r == 0 ? "" : ", ").Append("rank ").Append(r).Append(": ").Append(value(r));
        }

        return text.ToString();
    }
}
