namespace CoLM.Model.Tests;

/// <summary>Rotary inverse frequencies under rope_scaling, against values worked out by hand.</summary>
public sealed class RopeScalingTests
{
    // headDim 8, theta 10^4: inv_freq_i = 10^4^(-2i/8) = 1, 0.1, 0.01, 0.001 (wavelengths 2 pi / f: 6.28, 62.8, 628, 6283).
    private static readonly double[] Plain = [1.0, 0.1, 0.01, 0.001];

    [Fact]
    public void Without_scaling_the_frequencies_are_theta_to_the_minus_2i_over_d()
    {
        AssertClose(Plain, RopeScaling.InverseFrequencies(8, 10000, null));
    }

    [Fact]
    public void Linear_scaling_divides_every_frequency_by_the_factor()
    {
        AssertClose([0.25, 0.025, 0.0025, 0.00025], RopeScaling.InverseFrequencies(8, 10000, new RopeScaling("linear", 4.0)));
    }

    [Fact]
    public void Llama3_scaling_keeps_high_divides_low_and_blends_medium_frequencies()
    {
        // original context 64, low_freq_factor 1, high_freq_factor 4, factor 8:
        // low-frequency wavelength bound 64 / 1 = 64, high-frequency bound 64 / 4 = 16.
        //   f = 1     (wavelength 6.28 < 16): high, kept: 1
        //   f = 0.1   (wavelength 62.83 in [16, 64]): smooth = (64 / 62.8319 - 1) / (4 - 1) = 0.0061973;
        //             (1 - smooth) * 0.1 / 8 + smooth * 0.1 = 0.0124225 + 0.0006197 = 0.0130423
        //   f = 0.01  (wavelength 628 > 64): low, 0.01 / 8 = 0.00125
        //   f = 0.001 (wavelength 6283 > 64): 0.000125
        var scaling = new RopeScaling("llama3", 8.0, LowFreqFactor: 1.0, HighFreqFactor: 4.0, OriginalMaxPositions: 64);
        AssertClose([1.0, 0.0130423, 0.00125, 0.000125], RopeScaling.InverseFrequencies(8, 10000, scaling), relative: 1e-5);
    }

    [Fact]
    public void Other_types_are_refused_by_name()
    {
        var error = Assert.Throws<ArgumentException>(() => RopeScaling.InverseFrequencies(8, 10000, new RopeScaling("dynamic", 2.0)));
        Assert.Contains("'dynamic'", error.Message);
    }

    private static void AssertClose(double[] expected, double[] actual, double relative = 1e-12)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= relative * expected[i], $"pair {i}: expected {expected[i]}, got {actual[i]}");
    }
}
