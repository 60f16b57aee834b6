using CoLM.Cluster.Actors;
using CoLM.Cluster.Coordination;

namespace CoLM.Cluster.Tests;

/// <summary>Periodic checkpoints are written in the background: the run pauses only for rank 0's in-memory copy.</summary>
public sealed class BackgroundCheckpointTests
{
    [Fact]
    public void A_periodic_checkpoint_lets_the_next_step_start_before_it_is_sealed_and_the_last_one_is_written_before_the_end()
    {
        var driver = new RunMachineDriver(RunMachineDriver.Define("colm.train.steps=4", "colm.train.checkpoint-every=2"));
        driver.RegisterAll();

        driver.Pump();

        var saves = driver.All<SendToTrainer>().Select(s => s.Message).OfType<SaveState>().ToArray();
        Assert.Equal([(2L, true), (4L, false)], saves.Select(s => (s.Step, s.Background)));
        int step3 = driver.Outputs.FindIndex(o => o is StepStarted { Step: 3 });
        int sealed2 = driver.Outputs.FindIndex(o => o is CheckpointTaken { Step: 2 });
        Assert.True(step3 >= 0 && sealed2 > step3, "step 3 starts while step 2's checkpoint is written");
        Assert.Contains(driver.Outputs, o => o is WriteCheckpointPart { Partial.Step: 2 });
        Assert.Contains(driver.Outputs, o => o is SealCheckpoint { Partial.Step: 2 });
        Assert.Equal([2L, 4L], driver.All<CheckpointTaken>().Select(c => c.Step));
        Assert.Equal(4, driver.Single<RunCompleted>().FinalCheckpoint.Step);
        Assert.Null(driver.State.PendingCheckpoint);
    }

    [Fact]
    public void A_stop_at_a_step_whose_background_checkpoint_is_still_written_waits_for_it_instead_of_writing_the_folder_twice()
    {
        var driver = new RunMachineDriver(RunMachineDriver.Define("colm.train.steps=4", "colm.train.checkpoint-every=2"));
        driver.RegisterAll();
        // Rank 0 copies step 2's state; its files are not written yet when the stop arrives.
        driver.Reply = (_, message, answer) => message is SaveState { Background: true } ? null : answer;
        driver.PauseWhen = o => o is SendToTrainer { Message: SaveState { Step: 2 } };
        driver.Pump();
        var save = driver.All<SendToTrainer>().Select(s => s.Message).OfType<SaveState>().Single();
        driver.Reply = (_, _, answer) => answer;
        driver.Post(new StopRequested("interrupted"));
        driver.Post(new StateCopied(save.Generation, 2, 0));
        driver.PauseWhen = _ => false;
        driver.Pump();
        Assert.Equal(RunPhase.Checkpointing, driver.State.Phase);
        Assert.Single(driver.All<SendToTrainer>().Select(s => s.Message).OfType<SaveState>());

        driver.Post(new StateSaved(save.Generation, 2, 0));
        driver.Pump();

        var result = driver.Single<RunCompleted>();
        Assert.Equal(("stopped", 2L), (result.Result.State, result.FinalCheckpoint.Step));
        Assert.Single(driver.All<CheckpointTaken>());
    }
}
