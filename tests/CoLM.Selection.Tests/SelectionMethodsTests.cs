using Xunit;

namespace CoLM.Selection.Tests;

public class SelectionMethodsTests
{
    [Fact]
    public void Every_method_has_a_name_that_parses_back_to_it()
    {
        string[] expected = ["colm", "random", "big-batch", "source-balanced-random", "big-loss", "small-loss", "grad-norm"];

        Assert.Equal(expected, Enum.GetValues<SelectionMethod>().Select(SelectionMethods.Name));
        foreach (SelectionMethod m in Enum.GetValues<SelectionMethod>())
        {
            Assert.Equal(m, SelectionMethods.Parse(SelectionMethods.Name(m)));
            Assert.Equal(m, SelectionMethods.Parse(" " + SelectionMethods.Name(m).ToUpperInvariant() + " "));
        }
    }

    [Fact]
    public void An_unknown_name_fails_with_a_message_listing_the_valid_names()
    {
        var e = Assert.Throws<ArgumentException>(() => SelectionMethods.Parse("bigloss"));

        Assert.Contains("'bigloss'", e.Message);
        foreach (SelectionMethod m in Enum.GetValues<SelectionMethod>()) Assert.Contains(SelectionMethods.Name(m), e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => SelectionMethods.Name((SelectionMethod)99));
    }

    [Fact]
    public void The_new_methods_come_after_the_existing_three_so_stored_values_keep_their_meaning()
    {
        Assert.Equal(0, (int)SelectionMethod.Colm);
        Assert.Equal(1, (int)SelectionMethod.Random);
        Assert.Equal(2, (int)SelectionMethod.BigBatch);
        Assert.Equal(6, (int)SelectionMethod.GradNorm);
    }

    [Theory]
    [InlineData(SelectionMethod.Colm, false, true, false, true)]
    [InlineData(SelectionMethod.Random, false, false, false, false)]
    [InlineData(SelectionMethod.BigBatch, false, false, false, false)]
    [InlineData(SelectionMethod.SourceBalancedRandom, false, false, false, false)]
    [InlineData(SelectionMethod.BigLoss, true, false, false, true)]
    [InlineData(SelectionMethod.SmallLoss, true, false, false, true)]
    [InlineData(SelectionMethod.GradNorm, false, true, false, true)]
    public void The_helpers_tell_the_caller_which_rows_need_a_loss_or_a_feature(
        SelectionMethod method, bool losses, bool features, bool smallWhenBalanced, bool smallWhenUnbalanced)
    {
        Assert.Equal(losses, SelectionMethods.NeedsLosses(method));
        Assert.Equal(features, SelectionMethods.NeedsFeatures(method));
        Assert.Equal(smallWhenBalanced, SelectionMethods.SketchesSmallSources(method, sourceBalancing: true));
        Assert.Equal(smallWhenUnbalanced, SelectionMethods.SketchesSmallSources(method, sourceBalancing: false));
    }

    [Fact]
    public void Options_default_to_uniform_weights_and_source_balancing_and_keep_the_positional_constructor()
    {
        var options = new SelectionOptions(SelectionMethod.Colm, 0.01, 0);

        Assert.Equal(CoresetWeighting.Uniform, options.Weighting);
        Assert.True(options.SourceBalancing);
        Assert.Equal(CoresetWeighting.Uniform, SelectionOptions.Default.Weighting);
        Assert.True(SelectionOptions.Default.SourceBalancing);
        var changed = options with { Weighting = CoresetWeighting.Medoid, SourceBalancing = false };
        Assert.NotEqual(options, changed);
        Assert.Throws<ArgumentException>(() => new CoresetSelector(options with { Weighting = (CoresetWeighting)7 }, [false], 8));
    }
}
