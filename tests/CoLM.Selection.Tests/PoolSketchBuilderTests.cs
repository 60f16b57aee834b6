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
}
