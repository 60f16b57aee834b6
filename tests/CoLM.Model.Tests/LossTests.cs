using TorchSharp;
using static TorchSharp.torch;

namespace CoLM.Model.Tests;

public sealed class LossTests
{
    [Fact]
    public void Collate_shifts_pads_on_the_right_and_masks_the_prompt()
    {
        using var batch = Collate.Build([([1, 2, 3, 4, 5], 2), ([6, 7, 8], 1)], padId: 9, CPU);

        Assert.Equal(new long[] { 1, 2, 3, 4, 6, 7, 9, 9 }, batch.Inputs.data<long>().ToArray());
        Assert.Equal(new long[] { 2, 3, 4, 5, 7, 8, 9, 9 }, batch.Targets.data<long>().ToArray());
        // Row 0: targets 2 (prompt) is not learned; 3, 4, 5 are. Row 1: prompt is token 6 only.
        Assert.Equal(new float[] { 0, 1, 1, 1, 1, 1, 0, 0 }, batch.Mask.data<float>().ToArray());
        Assert.Equal((2, 4), (batch.Size, batch.Length));
    }

    [Fact]
    public void Collate_refuses_a_row_with_nothing_to_predict()
    {
        Assert.Throws<ArgumentException>(() => Collate.Build([([1, 2, 3], 1), ([4], 1)], padId: 0, CPU));
        Assert.Throws<ArgumentException>(() => Collate.Build([], padId: 0, CPU));
    }

    [Fact]
    public void Per_example_loss_is_the_mean_cross_entropy_over_each_rows_own_targets()
    {
        float[] logitValues = Enumerable.Range(0, 2 * 3 * 5).Select(i => (float)Math.Sin(1.7 * i) * 3f).ToArray();
        long[] targetValues = [4, 0, 2, 1, 3, 99]; // 99: an out-of-vocabulary pad id under a zero mask
        float[] maskValues = [1, 0, 1, 0, 1, 0];
        using var scope = NewDisposeScope();

        var loss = TokenLoss.PerExample(
            tensor(logitValues, [2, 3, 5]), tensor(targetValues, [2, 3]), tensor(maskValues, [2, 3]));
        var empty = TokenLoss.PerExample(
            tensor(logitValues, [2, 3, 5]), tensor(targetValues, [2, 3]), zeros(2, 3));

        double CrossEntropy(int row, int position)
        {
            var z = logitValues.AsSpan((row * 3 + position) * 5, 5).ToArray().Select(v => (double)v).ToArray();
            double logSumExp = Math.Log(z.Sum(Math.Exp));
            return logSumExp - z[targetValues[row * 3 + position]];
        }
        double row0 = (CrossEntropy(0, 0) + CrossEntropy(0, 2)) / 2;
        double row1 = CrossEntropy(1, 1);
        var actual = loss.data<float>().ToArray();
        Assert.Equal(row0, actual[0], 1e-5);
        Assert.Equal(row1, actual[1], 1e-5);
        Assert.Equal(new float[] { 0, 0 }, empty.data<float>().ToArray());
    }

    [Fact]
    public void Padding_never_contributes_an_example_alone_and_padded_in_a_batch_has_the_same_loss()
    {
        using var model = Tiny.Model(seed: 3);
        var rows = Tiny.Rows(8, 6, 14, 9);
        using var together = Collate.Build(rows, padId: 0, CPU);
        using var otherPad = Collate.Build(rows, padId: 31, CPU);
        using var scope = NewDisposeScope();
        var batched = TokenLoss.PerExample(model.forward(together.Inputs), together.Targets, together.Mask).data<float>().ToArray();
        var batchedOtherPad = TokenLoss.PerExample(model.forward(otherPad.Inputs), otherPad.Targets, otherPad.Mask).data<float>().ToArray();

        for (int i = 0; i < rows.Count; i++)
        {
            using var alone = Collate.Build([rows[i]], padId: 0, CPU);
            float single = TokenLoss.PerExample(model.forward(alone.Inputs), alone.Targets, alone.Mask).item<float>();
            Assert.Equal(single, batched[i], 1e-6);
            Assert.Equal(single, batchedOtherPad[i], 1e-6);
        }
    }
}
