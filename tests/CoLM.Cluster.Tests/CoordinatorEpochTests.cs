using CoLM.Cluster.Coordination;

namespace CoLM.Cluster.Tests;

/// <summary>The journal's fence: a coordinator learns it was taken over from before it sends again.</summary>
public sealed class CoordinatorEpochTests : IDisposable
{
    private readonly CheckpointFolders _folders = new();

    public void Dispose() => _folders.Dispose();

    [Fact]
    public void A_claimed_epoch_supersedes_older_epochs_of_the_same_submission_only()
    {
        var run = _folders.Run;
        Assert.False(RunJournal.IsSuperseded(run, "submission-a", 0));

        RunJournal.Claim(run, "submission-a", 1);

        Assert.True(RunJournal.IsSuperseded(run, "submission-a", 0));
        Assert.False(RunJournal.IsSuperseded(run, "submission-a", 1));
        Assert.False(RunJournal.IsSuperseded(run, "submission-a", 2));
        // A later submission of the same run directory (a resume) starts again at epoch 0.
        Assert.False(RunJournal.IsSuperseded(run, "submission-b", 0));
    }

    [Fact]
    public void The_journal_keeps_the_epoch_of_the_coordinator_that_wrote_it()
    {
        var run = _folders.Run;
        RunJournal.Write(run, new RunJournalEntry("submission-a", 2, [1, 2, 3], [], []));

        Assert.Equal(2, RunJournal.Read(run, "submission-a")!.Epoch);
        Assert.Null(RunJournal.Read(run, "submission-b"));
    }
}
