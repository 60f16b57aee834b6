using CoLM.Data;
using Xunit;

namespace CoLM.Data.Tests;

public class PoolSamplerTests
{
    [Fact]
    public void Each_epoch_covers_every_id_exactly_once()
    {
        var sampler = new PoolSampler(100, seed: 3);
        for (var epoch = 0; epoch < 3; epoch++)
        {
            var ids = Enumerable.Range(0, 10).SelectMany(_ => sampler.Next(10)).ToArray();
            Assert.Equal(Enumerable.Range(0, 100), ids.Order());
            Assert.Equal(new SamplerState(epoch + 1, 0), sampler.State);
        }
    }

    [Fact]
    public void Epochs_use_different_permutations()
    {
        var sampler = new PoolSampler(50, seed: 3);
        Assert.NotEqual(sampler.Next(50), sampler.Next(50));
    }

    [Fact]
    public void Pool_spans_the_epoch_boundary()
    {
        var sampler = new PoolSampler(10, seed: 9);
        var reference = new PoolSampler(10, seed: 9);
        var epoch0 = reference.Next(10);
        var epoch1 = reference.Next(10);

        Assert.Equal(epoch0[..7], sampler.Next(7));
        var spanning = sampler.Next(6);
        Assert.Equal(epoch0[7..].Concat(epoch1[..3]), spanning);
        Assert.Equal(new SamplerState(1, 3), sampler.State);
    }

    [Fact]
    public void Pool_larger_than_the_dataset_walks_several_epochs()
    {
        var sampler = new PoolSampler(4, seed: 1);
        var pool = sampler.Next(10);
        Assert.Equal(10, pool.Length);
        Assert.Equal(Enumerable.Range(0, 4), pool[..4].Order());
        Assert.Equal(Enumerable.Range(0, 4), pool[4..8].Order());
        Assert.Equal(new SamplerState(2, 2), sampler.State);
    }

    [Fact]
    public void Restore_continues_identically_even_in_a_fresh_sampler()
    {
        var original = new PoolSampler(37, seed: 11);
        original.Next(20);
        original.Next(30);
        var saved = original.State;
        var expected = Enumerable.Range(0, 5).Select(_ => original.Next(16)).ToArray();

        var fresh = new PoolSampler(37, seed: 11);
        fresh.Restore(saved);
        Assert.Equal(expected, Enumerable.Range(0, 5).Select(_ => fresh.Next(16)).ToArray());

        // Restoring backwards into an earlier epoch also replays exactly.
        original.Restore(saved);
        Assert.Equal(expected, Enumerable.Range(0, 5).Select(_ => original.Next(16)).ToArray());
    }

    [Fact]
    public void Same_seed_same_sequence_different_seed_differs()
    {
        Assert.Equal(new PoolSampler(64, 1).Next(64), new PoolSampler(64, 1).Next(64));
        Assert.NotEqual(new PoolSampler(64, 1).Next(64), new PoolSampler(64, 2).Next(64));
    }

    [Theory]
    [InlineData(-1, 0)]
    [InlineData(0, -1)]
    [InlineData(0, 10)]
    public void Restore_validates(long epoch, int position)
    {
        var sampler = new PoolSampler(10, seed: 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => sampler.Restore(new SamplerState(epoch, position)));
        Assert.Equal(new SamplerState(0, 0), sampler.State);
    }

    [Fact]
    public void Bad_arguments_are_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new PoolSampler(0, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new PoolSampler(5, 1).Next(0));
    }
}
