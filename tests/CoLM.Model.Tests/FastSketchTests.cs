using Xunit.Abstractions;
using static TorchSharp.torch;

namespace CoLM.Model.Tests;

/// <summary>The fast zeroth-order sketch (attention mixed once, target rows only) against the by-definition reference.</summary>
public sealed class FastSketchTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(1, 4, false)]
    [InlineData(8, 4, false)]
    [InlineData(8, 16, false)] // rank above the head size (8)
    [InlineData(8, 4, true)]   // LoRA on v_proj alone: the tail runs on frozen weights only
    public void The_fast_sketch_matches_the_reference_on_padded_rows_of_different_lengths(int probes, int rank, bool valueOnly)
    {
        var lora = valueOnly ? Tiny.Lora(rank, dropout: 0.1, "v_proj") : Tiny.Lora(rank, dropout: 0.1);
        using var model = Tiny.Model(lora: lora);
        using var batch = Tiny.Batch(60, 13, 7, 17, 10, 4);
        Tiny.Train(model, batch, steps: 1); // B = 0 at init; one step makes it nonzero
        Assert.Contains(Tiny.Values(model.SketchParameter), v => v != 0);
        model.train();

        var reference = ZerothOrderSketch.ComputeReference(model, batch, probeSeed: 31, probes, epsilon: 1e-3);
        var fast = ZerothOrderSketch.Compute(model, batch, probeSeed: 31, probes, epsilon: 1e-3);

        Assert.True(model.training);
        AssertClose(reference, fast, batch.Size, probes);
    }

    [Fact]
    public void The_fast_sketch_never_writes_the_parameter_and_is_deterministic()
    {
        using var model = Tiny.Model();
        using var batch = Tiny.Batch(61, 14, 9, 12);
        Tiny.Train(model, batch, steps: 2);
        var before = Tiny.Values(model.SketchParameter);
        model.eval();

        var a = ZerothOrderSketch.Compute(model, batch, probeSeed: 8, probes: 8, epsilon: 1e-3);
        var b = ZerothOrderSketch.Compute(model, batch, probeSeed: 8, probes: 8, epsilon: 1e-3);

        Assert.False(model.training);
        Assert.Equal(before, Tiny.Values(model.SketchParameter));
        Assert.Equal(a.Losses, b.Losses);
        Assert.Equal(a.Coefficients, b.Coefficients);
    }

    [Fact]
    public void After_a_sketch_even_a_failed_one_the_model_trains_as_before()
    {
        using var model = Tiny.Model(lora: Tiny.Lora(dropout: 0.1));
        using var batch = Tiny.Batch(63, 12, 9);
        using var tooLong = Tiny.Batch(64, Tiny.Config.MaxSeqLen + 2);
        using var twin = Tiny.Model(lora: Tiny.Lora(dropout: 0.1));
        model.train();

        ZerothOrderSketch.Compute(model, batch, probeSeed: 1, probes: 2, epsilon: 1e-3);
        Assert.Throws<ArgumentException>(() => ZerothOrderSketch.Compute(model, tooLong, probeSeed: 1, probes: 2, epsilon: 1e-3));

        // The adapters are back to their trainable form: the same steps give the same bits as on an untouched twin.
        Assert.True(model.training);
        Tiny.Train(model, batch, steps: 2);
        Tiny.Train(twin, batch, steps: 2);
        foreach (var ((name, mine), (_, theirs)) in model.TrainableParameters().Zip(twin.TrainableParameters()))
            Assert.True(Tiny.Values(mine).SequenceEqual(Tiny.Values(theirs)), name);
    }

    [Fact]
    public void A_row_without_targets_gets_zero_loss_and_zero_coefficients_like_the_reference()
    {
        using var model = Tiny.Model();
        using var trained = Tiny.Batch(62, 12, 9, 15);
        Tiny.Train(model, trained, steps: 1);
        using var scope = NewDisposeScope();
        var mask = trained.Mask.clone();
        mask[1].zero_();
        using var batch = new TokenBatch(trained.Inputs.clone(), trained.Targets.clone(), mask.DetachFromDisposeScope());

        var reference = ZerothOrderSketch.ComputeReference(model, batch, probeSeed: 4, probes: 3, epsilon: 1e-3);
        var fast = ZerothOrderSketch.Compute(model, batch, probeSeed: 4, probes: 3, epsilon: 1e-3);

        Assert.Equal(0f, fast.Losses[1]);
        Assert.Equal([0f, 0f, 0f], fast.Coefficients.AsSpan(3, 3).ToArray());
        AssertClose(reference, fast, batch.Size, probes: 3);

        mask.zero_(); // no target anywhere: nothing goes through the tail at all
        var empty = ZerothOrderSketch.Compute(model, batch, probeSeed: 4, probes: 3, epsilon: 1e-3);
        Assert.All(empty.Losses, v => Assert.Equal(0f, v));
        Assert.All(empty.Coefficients, v => Assert.Equal(0f, v));
    }

    private void AssertClose(SketchResult reference, SketchResult fast, int examples, int probes)
    {
        Assert.Equal(examples, fast.Losses.Length);
        Assert.Equal(examples * probes, fast.Coefficients.Length);
        double lossRel = 0;
        for (int i = 0; i < examples; i++)
        {
            double diff = Math.Abs(reference.Losses[i] - fast.Losses[i]);
            lossRel = Math.Max(lossRel, diff / Math.Max(Math.Abs(reference.Losses[i]), 1e-30));
            Assert.True(diff <= 1e-5 * Math.Abs(reference.Losses[i]), $"loss {i}: {reference.Losses[i]} vs {fast.Losses[i]}");
        }

        // Central differences at eps = 1e-3 in fp32: each loss carries ~1e-7 relative rounding, so c carries
        // ~1e-4 of noise in either implementation, and the two round differently.
        double scale = reference.Coefficients.Max(v => Math.Abs(v));
        double maxDiff = reference.Coefficients.Zip(fast.Coefficients, (r, f) => Math.Abs(r - f)).Max();
        output.WriteLine($"K={probes}: max |c| {scale:G3}, max |c_fast - c_ref| {maxDiff:G3} ({maxDiff / Math.Max(scale, 1e-30):G3} of max |c|), " +
            $"max relative loss diff {lossRel:G3}");
        Assert.True(maxDiff <= 1e-2 * scale + 1e-4, $"max |diff| {maxDiff} with max |c| {scale}");
    }
}
