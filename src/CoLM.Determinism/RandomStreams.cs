namespace CoLM.Determinism;

/// <summary>
/// Every seeded random stream in CoLM, named once, with what it feeds. A stream is a pure
/// function of a configured seed and the names below, never of a shared or global generator, a
/// process, a thread count or a .NET version: a resumed run, a retried step and a run spread over
/// three processes draw exactly the numbers an uninterrupted single-process run draws.
/// <list type="table">
/// <listheader><term>stream</term><description>seeded by, feeds</description></listheader>
/// <item><term><see cref="Data"/>(seed, <see cref="DataStream.PoolSampler"/>, epoch)</term><description>colm.run.seed: the order in which epoch e visits the train examples (PoolSampler)</description></item>
/// <item><term><see cref="Data"/>(seed, <see cref="DataStream.Heldout"/>, hash of source)</term><description>colm.data.synthetic.seed: which examples of a JSONL source are held out</description></item>
/// <item><term><see cref="Data"/>(seed, <see cref="DataStream.SyntheticSource"/>, k)</term><description>colm.data.synthetic.seed: the examples of built-in source k</description></item>
/// <item><term><see cref="Data"/>(seed, <see cref="DataStream.SyntheticOrder"/>, 0)</term><description>colm.data.synthetic.seed: the order of the built-in mixture</description></item>
/// <item><term><see cref="Data"/>(0, <see cref="DataStream.InstructPopular"/> + source, 0)</term><description>fixed: the popular prompts of an instruct source (the same in every run)</description></item>
/// <item><term><see cref="Data"/>(seed, <see cref="DataStream.PretrainLine"/>, index)</term><description>colm.pretrain.corpus-seed: line `index` of `colm pretrain`'s corpus</description></item>
/// <item><term><see cref="ProbeSeed"/>(seed, step)</term><description>colm.run.seed: the step's zeroth-order probe directions (step 0 for every step under feature = paper)</description></item>
/// <item><term><see cref="ProbeStream"/>(probe seed, k)</term><description>element j of probe direction z_k is <see cref="Mix"/>(stream + j): counter-based, so any part regenerates alone</description></item>
/// <item><term><see cref="SelectionSeed"/>(seed, step)</term><description>colm.run.seed: the step's selection (facility-location ties, random baselines)</description></item>
/// <item><term><see cref="Selection"/>(selection seed, purpose)</term><description>the kept-small-source sample, the random batch, the source-balanced random batch</description></item>
/// <item><term><see cref="MatchingPoolSeed"/>(seed)</term><description>colm.run.seed: `bench matching`'s pools, apart from the run's own</description></item>
/// <item><term><see cref="Parameter"/>(seed, name)</term><description>colm.model.init-seed: the initial values of parameter `name` (a torch.Generator per parameter)</description></item>
/// <item><term><see cref="Dropout"/>(seed, step, rank)</term><description>colm.run.seed: rank r's dropout masks at step t (a resumed run replays them)</description></item>
/// </list>
/// </summary>
public static class RandomStreams
{
    /// <summary>SplitMix64's increment, the golden ratio in 64 bits.</summary>
    public const ulong Gamma = 0x9E3779B97F4A7C15UL;

    /// <summary>SplitMix64's output function: a bijective 64-bit mix with good avalanche.</summary>
    public static ulong Finalize(ulong z)
    {
        unchecked
        {
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }

    /// <summary>One SplitMix64 output from state <paramref name="x"/> (advance, then finalise): how seeds are combined.</summary>
    public static ulong Mix(ulong x) => Finalize(unchecked(x + Gamma));

    /// <summary>An independent data-layer stream: each source or epoch its own, so adding a source or skipping an epoch never shifts the others.</summary>
    public static SplitMix64 Data(long seed, string domain, ulong stream) =>
        new(Finalize(unchecked((ulong)seed) ^ Finalize(StableHash.Of(domain) ^ Finalize(unchecked(stream + Gamma)))));

    /// <summary>Seed of step <paramref name="step"/>'s probe directions; pass step 0 to reuse one set for the whole run.</summary>
    public static long ProbeSeed(long runSeed, long step) => StepSeed(runSeed, step);

    /// <summary>The stream of probe k's elements under <paramref name="probeSeed"/>.</summary>
    public static ulong ProbeStream(long probeSeed, int probe) => Mix(unchecked((ulong)probeSeed) ^ Mix(unchecked((ulong)probe + Gamma)));

    /// <summary>Seed of step <paramref name="step"/>'s selection, apart from its probes.</summary>
    public static long SelectionSeed(long runSeed, long step) => StepSeed(runSeed ^ 0x5E1EC7, step);

    /// <summary>A selection stream for one purpose, so the draws of different purposes never correlate.</summary>
    public static SplitMix64 Selection(long selectionSeed, SelectionPurpose purpose) =>
        new(Mix(unchecked((ulong)selectionSeed) ^ Mix((ulong)purpose)));

    /// <summary>`bench matching` draws its pools from its own sampler seed ("MATCH"), never the run's.</summary>
    public static long MatchingPoolSeed(long runSeed) => runSeed ^ 0x4D41544348;

    /// <summary>Seed of the torch.Generator that initialises parameter <paramref name="name"/>.</summary>
    public static ulong Parameter(long initSeed, string name) => Mix(unchecked((ulong)initSeed) ^ Mix(StableHash.Of(name)));

    /// <summary>Seed of rank <paramref name="rank"/>'s dropout masks at <paramref name="step"/>.</summary>
    public static long Dropout(long runSeed, long step, int rank) => unchecked((long)Mix((ulong)runSeed ^ Mix((ulong)(step * 1024 + rank))));

    private static long StepSeed(long seed, long step) => unchecked((long)Mix(Mix((ulong)seed) ^ (ulong)step));
}

/// <summary>The data layer's stream names (<see cref="RandomStreams.Data"/>).</summary>
public static class DataStream
{
    public const string PoolSampler = "pool-sampler";
    public const string Heldout = "heldout";
    public const string SyntheticSource = "synthetic.source";
    public const string SyntheticOrder = "synthetic.order";
    public const string InstructPopular = "instruct.popular.";
    public const string PretrainLine = "pretrain.line";
}

/// <summary>What a selection stream is for (<see cref="RandomStreams.Selection"/>); the values spell their names in ASCII.</summary>
public enum SelectionPurpose : ulong
{
    KeptSample = 0x4B455054UL,   // "KEPT"
    RandomBatch = 0x52414E44UL,  // "RAND"
    SourceRandom = 0x53524E44UL, // "SRND"
}
