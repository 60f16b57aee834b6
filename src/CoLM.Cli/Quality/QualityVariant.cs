namespace CoLM.Cli.Quality;

/// <summary>One arm of the comparison: a name and the settings that make it, relative to budget b.</summary>
public sealed record QualityVariant(string Name, string Description, IReadOnlyList<string> Sets)
{
    /// <summary>
    /// The arms `bench quality` runs without --methods: the paper's comparison (random at b, 2b,
    /// 4b; source-balanced random; CoLM from 2b and 4b, with K = 16 and 64, exact features, medoid
    /// weights; `paper` mode). The online-selection baselines (big-loss, small-loss, grad-norm)
    /// run when named, which keeps the default within about an hour on 2 cores.
    /// </summary>
    public static readonly string[] DefaultNames =
    [
        "random-b", "random-2b", "random-4b", "sbr-b", "colm-b-of-2b", "colm-b-of-4b", "colm-k16-b-of-2b", "colm-k64-b-of-2b",
        "colm-exact-b-of-2b", "colm-medoid-b-of-2b", "paper-b-of-2b",
    ];

    /// <summary>
    /// Every arm (the paper's comparison, in miniature): plain random batches at b, 2b and 4b;
    /// source-balanced random at b; CoLM at b from pools of 2b and 4b; the reference's `paper`
    /// mode; CoLM's alternatives (K = 16 and 64 probes, exact features, medoid weights); and the
    /// online batch selection baselines, all at b from a pool of 2b.
    /// </summary>
    public static IReadOnlyList<QualityVariant> Defaults(int b) =>
    [
        new("random-b", $"random {b}", ["colm.selection.method=big-batch", $"colm.selection.pool={b}"]),
        new("random-2b", $"random {2 * b}", ["colm.selection.method=big-batch", $"colm.selection.pool={2 * b}"]),
        new("random-4b", $"random {4 * b}", ["colm.selection.method=big-batch", $"colm.selection.pool={4 * b}"]),
        new("sbr-b", $"source-balanced random {b} of {2 * b}", Pick("source-balanced-random", b, 2 * b)),
        new("colm-b-of-2b", $"CoLM {b} of {2 * b}", Pick("colm", b, 2 * b)),
        new("colm-b-of-4b", $"CoLM {b} of {4 * b}", Pick("colm", b, 4 * b)),
        new("colm-k16-b-of-2b", $"CoLM K=16 {b} of {2 * b}", [.. Pick("colm", b, 2 * b), "colm.selection.probes=16"]),
        new("colm-k64-b-of-2b", $"CoLM K=64 {b} of {2 * b}", [.. Pick("colm", b, 2 * b), "colm.selection.probes=64"]),
        new("colm-exact-b-of-2b", $"CoLM exact features {b} of {2 * b}", [.. Pick("colm", b, 2 * b), "colm.selection.feature=exact"]),
        new("colm-medoid-b-of-2b", $"CoLM medoid weights {b} of {2 * b}", [.. Pick("colm", b, 2 * b), "colm.selection.weights=medoid"]),
        new("paper-b-of-2b", $"CoLM paper mode (K=1, fixed z) {b} of {2 * b}", [.. Pick("colm", b, 2 * b), "colm.selection.feature=paper"]),
        new("big-loss-b-of-2b", $"big loss {b} of {2 * b}", Pick("big-loss", b, 2 * b)),
        new("small-loss-b-of-2b", $"small loss {b} of {2 * b}", Pick("small-loss", b, 2 * b)),
        new("grad-norm-b-of-2b", $"grad norm {b} of {2 * b}", Pick("grad-norm", b, 2 * b)),
    ];

    private static string[] Pick(string method, int b, int pool) =>
        [$"colm.selection.method={method}", $"colm.selection.pool={pool}", $"colm.selection.budget={b}"];
}
