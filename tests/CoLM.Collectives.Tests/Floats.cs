using CoLM.Collectives;
using Xunit;
using Xunit.Sdk;

namespace CoLM.Collectives.Tests;

/// <summary>Test data and bit-exact comparison for float buffers.</summary>
internal static class Floats
{
    /// <summary>Values spread over six orders of magnitude, so float sums depend on their order.</summary>
    public static float[] Random(int length, int seed)
    {
        var random = new Random(seed);
        var values = new float[length];
        for (var i = 0; i < length; i++)
        {
            values[i] = (float)((random.NextDouble() - 0.5) * Math.Pow(10, random.Next(-3, 4)));
        }

        return values;
    }

    /// <summary>The reference: element-wise sum in the order given, one rounding per addition.</summary>
    public static float[] SumInRankOrder(float[][] inputs)
    {
        var sum = inputs[0].ToArray();
        foreach (var input in inputs.Skip(1))
        {
            for (var i = 0; i < sum.Length; i++)
            {
                sum[i] += input[i];
            }
        }

        return sum;
    }

    /// <summary>
    /// The canonical all-reduce result: chunk c (bounds from <see cref="RingReductionOrder.ChunkBounds"/>)
    /// is a left fold over ranks c + 1, c + 2, ..., c (mod n), one rounding per addition.
    /// </summary>
    public static float[] SumInRingOrder(float[][] inputs)
    {
        var n = inputs.Length;
        var length = inputs[0].Length;
        var sum = new float[length];
        for (var chunk = 0; chunk < n; chunk++)
        {
            var (start, end) = RingReductionOrder.ChunkBounds(length, chunk, n);
            for (var i = start; i < end; i++)
            {
                var acc = inputs[(chunk + 1) % n][i];
                for (var k = 2; k <= n; k++)
                {
                    acc += inputs[(chunk + k) % n][i];
                }

                sum[i] = acc;
            }
        }

        return sum;
    }

    public static bool SameBits(float[] expected, float[] actual) =>
        expected.Length == actual.Length
        && expected.Zip(actual).All(p => BitConverter.SingleToInt32Bits(p.First) == BitConverter.SingleToInt32Bits(p.Second));

    public static void AssertSameBits(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
            {
                throw new XunitException($"element {i}: expected {expected[i]:R}, got {actual[i]:R}");
            }
        }
    }
}
