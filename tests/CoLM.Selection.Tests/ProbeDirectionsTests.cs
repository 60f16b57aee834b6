using CoLM.Determinism;
using Xunit;

namespace CoLM.Selection.Tests;

public class ProbeDirectionsTests
{
    [Fact]
    public void Probe_entries_have_mean_near_zero_and_variance_near_one()
    {
        var z = new float[200_001];
        ProbeDirections.Fill(12345, 3, z);

        double mean = z.Average(x => (double)x);
        double variance = z.Sum(x => (x - mean) * (x - mean)) / (z.Length - 1);

        // Standard errors: mean 1/sqrt(n) ~ 0.0022, variance sqrt(2/n) ~ 0.0032.
        Assert.InRange(mean, -0.012, 0.012);
        Assert.InRange(variance, 0.98, 1.02);
        Assert.All(z, x => Assert.True(float.IsFinite(x)));
    }

    [Fact]
    public void The_same_seed_and_probe_reproduce_the_same_direction_and_others_differ()
    {
        var a = new float[1001];
        var b = new float[1001];
        var otherProbe = new float[1001];
        var otherSeed = new float[1001];

        ProbeDirections.Fill(42, 0, a);
        ProbeDirections.Fill(42, 0, b);
        ProbeDirections.Fill(42, 1, otherProbe);
        ProbeDirections.Fill(43, 0, otherSeed);

        Assert.Equal(a, b);
        Assert.NotEqual(a, otherProbe);
        Assert.NotEqual(a, otherSeed);
    }

    [Fact]
    public void Different_probes_are_nearly_orthogonal()
    {
        var a = new float[50_000];
        var b = new float[50_000];
        ProbeDirections.Fill(7, 0, a);
        ProbeDirections.Fill(7, 1, b);

        double dot = 0;
        for (int i = 0; i < a.Length; i++) dot += a[i] * b[i];

        // The cosine of independent Gaussian vectors has sd 1/sqrt(n) ~ 0.0045.
        Assert.InRange(dot / a.Length, -0.03, 0.03);
    }

    [Fact]
    public void A_prefix_of_a_longer_direction_equals_the_shorter_direction()
    {
        var longer = new float[100];
        var shorter = new float[37];
        ProbeDirections.Fill(5, 2, longer);
        ProbeDirections.Fill(5, 2, shorter);

        Assert.Equal(longer[..37], shorter);
    }

    [Fact]
    public void Step_seeds_are_fresh_per_step_and_reproducible()
    {
        Assert.Equal(RandomStreams.ProbeSeed(1, 10), RandomStreams.ProbeSeed(1, 10));
        Assert.NotEqual(RandomStreams.ProbeSeed(1, 10), RandomStreams.ProbeSeed(1, 11));
        Assert.NotEqual(RandomStreams.ProbeSeed(1, 10), RandomStreams.ProbeSeed(2, 10));
    }
}
