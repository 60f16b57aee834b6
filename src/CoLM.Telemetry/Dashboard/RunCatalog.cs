namespace CoLM.Telemetry.Dashboard;

/// <summary>A run the dashboard can show: its name and its run directory (where metrics.jsonl and status.json are).</summary>
public sealed record DashboardRun(string Name, string Directory);

/// <summary>
/// The runs this process's dashboard lists, newest last: a node adds each run submitted to it (the
/// run directory is on storage every node shares, so any node can show any of its runs), and
/// `colm dashboard RUN_DIR` adds the one it was given. Finished runs stay listed.
/// </summary>
public sealed class RunCatalog
{
    private readonly object _gate = new();
    private readonly List<DashboardRun> _runs = [];

    public void Add(DashboardRun run)
    {
        lock (_gate)
        {
            _runs.RemoveAll(r => r.Directory == run.Directory);
            _runs.Add(run);
        }
    }

    public IReadOnlyList<DashboardRun> All
    {
        get { lock (_gate) return [.. _runs]; }
    }
}
