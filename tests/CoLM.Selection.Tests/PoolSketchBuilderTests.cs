using System.Collections.Immutable;
using CoLM.Selection;
using Xunit;

namespace CoLM.Selection.Tests;

public sealed class PoolSketchBuilderTests
{
    [Fact]
    public void Shares_from_several_trainers_land_in_pool_order_and_unsketched_rows_stay_zero()
    {
        var builder = new PoolSketchBuilder([10, 20, 30, 40], probes: 2);
        builder.Add([30], [3f], [3.1f, 3.2f]);
        builder.Add([10, 40], [1f, 4f], [1.1f, 1.2f, 4.1f, 4.2f]);

        var sketch = builder.Build([0, 1, 0, 0], probeSeed: 7, featureDim: 5);

        Assert.Equal([1f, 0f, 3f, 4f], sketch.Losses);
        Assert.Equal([1.1f, 1.2f, 0f, 0f, 3.1f, 3.2f, 4.1f, 4.2f], sketch.Coefficients);
        Assert.Equal(7, sketch.ProbeSeed);
    }

    [Fact]
    public void A_sketch_of_an_example_outside_the_pool_is_refused()
    {
        var builder = new PoolSketchBuilder([1, 2], probes: 1);
        var e = Assert.Throws<ArgumentException>(() => builder.Add([3], [0f], [0f]));
        Assert.Contains("example 3", e.Message);
    }

    [Fact]
    public void Dense_features_from_several_trainers_land_in_pool_order_and_become_the_pool_features()
    {
        var builder = new PoolSketchBuilder([10, 20, 30], probes: 0, featureDim: 3);
        builder.Add([30], [3f], [], ImmutableArray.Create(3.1f, 3.2f, 3.3f));
        builder.Add([10], [1f], [], new List<float> { 1.1f, 1.2f, 1.3f });

        var sketch = builder.Build([0, 0, 1], probeSeed: 0, featureDim: 3);

        Assert.Equal([1.1f, 1.2f, 1.3f, 0f, 0f, 0f, 3.1f, 3.2f, 3.3f], sketch.Features!);
        Assert.Empty(sketch.Coefficients);
        Assert.Equal(0, sketch.Probes);
        Assert.Null(new PoolSketchBuilder([1], probes: 1).Build([0], 0, 4).Features);
    }

    [Fact]
    public void Features_of_the_wrong_size_or_dimension_are_refused()
    {
        var builder = new PoolSketchBuilder([1, 2], probes: 0, featureDim: 2);

        Assert.Throws<ArgumentException>(() => builder.Add([1], [0f], [], [1f, 2f, 3f]));
        Assert.Throws<ArgumentException>(() => builder.Add([1], [0f], []));
        Assert.Throws<ArgumentException>(() => builder.Build([0, 0], 0, featureDim: 3));
        Assert.Throws<ArgumentException>(() => new PoolSketchBuilder([1], probes: 1).Add([1], [0f], [0f], [1f]));
    }
}
