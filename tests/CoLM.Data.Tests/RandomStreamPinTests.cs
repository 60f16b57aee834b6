using CoLM.Determinism;
using Xunit;

namespace CoLM.Data.Tests;

/// <summary>
/// The data layer's random streams, pinned to the values they had before they were gathered into
/// RandomStreams (session 7). A change here changes every run's data, pools and held-out split for
/// the same seed: it must be deliberate, and said so in the change.
/// </summary>
public sealed class RandomStreamPinTests
{
    [Fact]
    public void Named_data_streams_and_the_stable_hash_keep_their_values()
    {
        Assert.Equal(2144434048021845327UL, RandomStreams.Data(7, DataStream.PoolSampler, 3).NextUInt64());
        Assert.Equal(886, RandomStreams.Data(3, DataStream.Heldout, StableHash.Of("src")).NextInt(1000));
        Assert.Equal(0.18015778299625473, RandomStreams.Data(3, DataStream.SyntheticOrder, 0).NextDouble());
        Assert.Equal(16654208175385433931UL, StableHash.Of("abc"));
        Assert.Equal(15036181154949393714UL, StableHash.Of([1, 2, 300]));
    }

    [Fact]
    public void The_pool_sampler_draws_the_same_pools_across_an_epoch_boundary()
    {
        Assert.Equal([9, 33, 0, 48, 7, 46, 25, 40, 36, 17, 15, 39], new PoolSampler(50, 7).Next(12));
        Assert.Equal([9, 8, 4, 0, 5], new PoolSampler(10, 7).Next(25)[20..]);
    }

    [Fact]
    public void The_built_in_mixtures_and_the_pretraining_corpus_are_the_same_text()
    {
        Assert.Equal("35 34 33 32", PretrainCorpus.Line(5, 123));
        var instruct = SyntheticMixture.Generate(new SyntheticMixtureSettings(TrainExamples: 60, HeldoutPerSource: 2, Seed: 9, Mixture: "instruct"), out var held);
        Assert.Equal("arith.add:add  0 4 ==4|arith.add:add 6 3 ==9|arith.sub:sub 30 16 ==14|string.count:count a in babcd ==1|string.upper:upper ymmjc ==YMMJC",
            string.Join("|", instruct.Take(5).Select(e => e.Source + ":" + e.Prompt + "=" + e.Target)));
        Assert.Equal("arith.add:add 81 22 ==103|arith.add:add 83 32 ==115|arith.sub:sub 6 4 ==2",
            string.Join("|", held.Take(3).Select(e => e.Source + ":" + e.Prompt + "=" + e.Target)));
        var planted = SyntheticMixture.Generate(new SyntheticMixtureSettings(TrainExamples: 60, HeldoutPerSource: 2, Seed: 9, Mixture: "planted"), out _);
        Assert.Equal("arith.planted:add 102 14 ==116|arith.planted:add 104 12 ==116|arith.planted:add 105 3 ==108|string.upper:upper uxqa ==UXQA|arith.planted:min 92 3 ==3",
            string.Join("|", planted.Take(5).Select(e => e.Source + ":" + e.Prompt + "=" + e.Target)));
    }
}
