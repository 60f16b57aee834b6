using CoLM.Determinism;
using Xunit;

namespace CoLM.Selection.Tests;

/// <summary>
/// The step's seeds, probe directions, selection streams, parameter initialisation and dropout
/// seeds, pinned to the values they had before they were gathered into RandomStreams (session 7).
/// A change here changes what every run draws for the same seed.
/// </summary>
public sealed class RandomStreamPinTests
{
    [Fact]
    public void Step_seeds_and_the_mix_keep_their_values()
    {
        Assert.Equal(7758145696617331093L, RandomStreams.ProbeSeed(7, 3));
        Assert.Equal(512951410249106522L, RandomStreams.SelectionSeed(7, 3));
        Assert.Equal(7134611160154358618UL, RandomStreams.Mix(5));
        Assert.Equal(12789306091252277440UL, RandomStreams.Parameter(42, "model.layers.0.self_attn.q_proj.lora_A"));
        Assert.Equal(2806886967877574691L, RandomStreams.Dropout(7, 5, 1));
    }

    [Fact]
    public void Probe_directions_are_the_same_numbers()
    {
        var z = new float[5];
        ProbeDirections.Fill(11, 2, z);
        Assert.Equal([-1.2503424f, -0.94946724f, -0.91332483f, 1.9517944f, -0.8462074f], z);
    }

    [Fact]
    public void Each_selection_purpose_keeps_its_stream()
    {
        Assert.Equal(15034689986778850100UL, RandomStreams.Selection(9, SelectionPurpose.RandomBatch).NextUInt64());
        Assert.Equal(5114851268086944369UL, RandomStreams.Selection(9, SelectionPurpose.KeptSample).NextUInt64());
        Assert.Equal(13425577061028180509UL, RandomStreams.Selection(9, SelectionPurpose.SourceRandom).NextUInt64());
        Assert.Equal([0, 5, 7, 16, 19], RandomStreams.Selection(9, SelectionPurpose.RandomBatch).SampleSorted(Enumerable.Range(0, 20).ToArray(), 5));
    }
}
