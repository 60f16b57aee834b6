using System.Text.Json;
using CoLM.Cluster.Runs;

namespace CoLM.Cluster.Tests;

public sealed class CheckpointDataFitTests
{
    private static readonly CoordinatorCheckpoint Recorded =
        new(4, 0, 32, 4, new Dictionary<string, SourceScore>(), "Colm", 400, CheckpointFolders.PerSource);

    [Fact]
    public void The_same_data_fits()
    {
        Assert.Null(CheckpointDataFit.Problem(Recorded, 400, new Dictionary<string, int> { ["a"] = 250, ["b"] = 150 }));
    }

    [Fact]
    public void Fewer_training_examples_are_named_with_both_counts()
    {
        var problem = CheckpointDataFit.Problem(Recorded, 300, new Dictionary<string, int> { ["a"] = 180, ["b"] = 120 });

        Assert.Equal("written for 400 training examples in 2 sources, the data now has 300 in 2 sources", problem);
    }

    [Fact]
    public void The_same_total_spread_differently_over_sources_is_named_by_source()
    {
        var problem = CheckpointDataFit.Problem(Recorded, 400, new Dictionary<string, int> { ["a"] = 200, ["b"] = 150, ["c"] = 50 });

        Assert.Equal("written for 250 training examples of source 'a', the data now has 200", problem);
    }

    [Fact]
    public void A_coordinator_state_written_before_the_counts_were_recorded_still_reads_and_only_its_sampler_position_is_checked()
    {
        const string older = """{"Step":4,"SamplerEpoch":0,"SamplerPosition":32,"NormalizerStep":4,"Baseline":{},"Method":"Colm"}""";

        var state = JsonSerializer.Deserialize<CoordinatorCheckpoint>(older)!;

        Assert.Null(state.TrainExamples);
        Assert.Null(state.TrainPerSource);
        Assert.Null(CheckpointDataFit.Problem(state, 123, new Dictionary<string, int> { ["x"] = 123 }));
        Assert.Equal("written for more than 32 training examples (its sampler is at example 32), the data now has 20",
            CheckpointDataFit.Problem(state, 20, new Dictionary<string, int> { ["x"] = 20 }));
    }

    [Fact]
    public void The_counts_round_trip_through_coordinator_json()
    {
        var back = JsonSerializer.Deserialize<CoordinatorCheckpoint>(JsonSerializer.Serialize(Recorded))!;

        Assert.Equal(400, back.TrainExamples);
        Assert.Equal(CheckpointFolders.PerSource, back.TrainPerSource);
    }
}
