using System.Buffers.Binary;
using System.Security.Cryptography;
using CoLM.Cluster.Hosting;
using CoLM.Data;
using CoLM.Determinism;
using CoLM.Selection;
using CoLM.Training;
using CoLM.Training.Settings;

namespace CoLM.Cluster.Coordination;

/// <summary>
/// The coordinator's side of one CoLM step as plain functions: which pool examples are sketched
/// and by whom, how the sketches become the pool's features, which seed the selection draws
/// from, and how the coreset is dealt to the trainers. The run (<see cref="RunStateMachine"/>)
/// and `colm bench step` both call these, so the benchmark times the step a run takes.
/// </summary>
public sealed class StepPlanner
{
    private readonly ColmSettings _settings;
    private readonly DataMixture _data;

    public StepPlanner(ColmSettings settings, DataMixture data, int sketchWidth)
    {
        _settings = settings;
        _data = data;
        SketchWidth = sketchWidth;
        IsSmallSource = SmallSourceShare.Flags(settings.Selection, data);
    }

    /// <summary>Per source: kept whole when sources are balanced (colm.selection.small-sources).</summary>
    public bool[] IsSmallSource { get; }

    /// <summary>The width of one exact feature row, and of the selector's normaliser.</summary>
    public int SketchWidth { get; }

    public int TrainedPerStep => _settings.Selection.TrainedPerStep;

    /// <summary>A selector for this run's method, small sources and feature width; it holds the normaliser history.</summary>
    public CoresetSelector NewSelector() => new(_settings.Selection.ToOptions(), IsSmallSource, featureDim: SketchWidth);

    /// <summary>
    /// The pool split into one share per trainer to sketch; null when the method needs no sketch.
    /// Small-source examples are kept whole when sources are balanced: nothing to compute for them.
    /// </summary>
    public int[][]? SketchShares(int[] pool, int world)
    {
        if (_settings.Selection.SketchKind is null) return null;
        var toSketch = _settings.Selection.SketchesSmallSources
            ? pool
            : pool.Where(id => !IsSmallSource[_data.TrainSourceIds[id]]).ToArray();
        return WorkShares.Split(toSketch, world);
    }

    /// <summary>What each trainer computes for its share at <paramref name="step"/> (the probe directions' seed and count).</summary>
    public (SketchKind Kind, long ProbeSeed, int Probes) SketchRequest(long step) =>
        (_settings.Selection.SketchKind ?? SketchKind.LossOnly, _settings.Selection.ProbeSeed(_settings.Run.Seed, step), _settings.Selection.EffectiveProbes);

    /// <summary>One trainer's sketch of its share, as it arrives.</summary>
    public sealed record ShareSketch(IReadOnlyList<int> Ids, IReadOnlyList<float> Losses, IReadOnlyList<float> Coefficients, IReadOnlyList<float> Features);

    /// <summary>Selects the coreset of <paramref name="pool"/> from the trainers' sketches (none for methods without one).</summary>
    public CoresetSelection Select(CoresetSelector selector, int[] pool, IEnumerable<ShareSketch> sketches, long step)
    {
        var sel = _settings.Selection;
        int probes = sel.SketchKind == SketchKind.ZerothOrder ? sel.EffectiveProbes : 0;
        var builder = new PoolSketchBuilder(pool, probes, sel.SketchKind == SketchKind.Exact ? SketchWidth : 0);
        foreach (var s in sketches) builder.Add(s.Ids, s.Losses, s.Coefficients, s.Features);
        var sketch = builder.Build(pool.Select(id => _data.TrainSourceIds[id]).ToArray(), sel.ProbeSeed(_settings.Run.Seed, step), SketchWidth);
        return selector.Select(sketch, sel.TrainedPerStep, SelectionSeed(step));
    }

    /// <summary>The selection's own random stream (facility-location ties, random baselines), apart from the probes'.</summary>
    public long SelectionSeed(long step) => RandomStreams.SelectionSeed(_settings.Run.Seed, step);

    /// <summary>
    /// A short fingerprint of a coreset (its example ids and weights in order): metrics.jsonl
    /// records it per step, so two runs, or a run and `colm bench step`, can be shown to have
    /// selected the same examples.
    /// </summary>
    public static string Digest(CoresetSelection selection)
    {
        var bytes = new byte[selection.ExampleIds.Length * 8];
        for (int i = 0; i < selection.ExampleIds.Length; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(8 * i), selection.ExampleIds[i]);
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(8 * i + 4), selection.Weights[i]);
        }
        return Convert.ToHexStringLower(SHA256.HashData(bytes).AsSpan(0, 8));
    }

    /// <summary>One trainer's part of the coreset and the weight the whole coreset carries.</summary>
    public sealed record TrainShare(int[] Ids, float[] Weights, double GlobalWeight);

    /// <summary>
    /// Deals the coreset out round-robin in (source, id) order, so every trainer gets an even share
    /// of each source (the reference implementation gives one rank most of the kept examples).
    /// </summary>
    public TrainShare[] Deal(CoresetSelection selection, int world)
    {
        var order = Enumerable.Range(0, selection.ExampleIds.Length)
            .OrderBy(i => _data.TrainSourceIds[selection.ExampleIds[i]])
            .ThenBy(i => selection.ExampleIds[i]).ToArray();
        var ids = Enumerable.Range(0, world).Select(_ => new List<int>()).ToArray();
        var weights = Enumerable.Range(0, world).Select(_ => new List<float>()).ToArray();
        for (int j = 0; j < order.Length; j++)
        {
            ids[j % world].Add(selection.ExampleIds[order[j]]);
            weights[j % world].Add(selection.Weights[order[j]]);
        }
        double globalWeight = selection.Weights.Sum(w => (double)w);
        return Enumerable.Range(0, world).Select(r => new TrainShare([.. ids[r]], [.. weights[r]], globalWeight)).ToArray();
    }
}
