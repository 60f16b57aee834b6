using CoLM.Cluster.Runs;

namespace CoLM.System.Tests;

/// <summary>Damaged checkpoints and checkpoints that do not fit the data, met by `colm train --resume` as a real process.</summary>
public sealed class CheckpointRecoveryTests : IDisposable
{
    private readonly TinyRun _tiny = new();

    public void Dispose() => _tiny.Dispose();

    private string CheckpointFile(string run, long step, string file) =>
        Path.Combine(_tiny.RunPath(run), "checkpoints", $"step-{step:D6}", file);

    private static void FlipByte(string file)
    {
        var bytes = File.ReadAllBytes(file);
        bytes[bytes.Length / 2] ^= 0x01;
        File.WriteAllBytes(file, bytes);
    }

    private static void Truncate(string file)
    {
        var bytes = File.ReadAllBytes(file);
        File.WriteAllBytes(file, bytes[..(bytes.Length / 2)]);
    }

    private static void AssertRefusedInOneLine(ColmProcess.Outcome o)
    {
        Assert.Equal(2, o.ExitCode);
        Assert.DoesNotContain("   at ", o.Stdout + o.Stderr); // no stack trace
        Assert.Single(o.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.True(o.Stdout.Length + o.Stderr.Length < 1024, $"{o.Stdout.Length + o.Stderr.Length} characters of output:\n{o.Stderr}");
    }

    [Fact]
    public async Task Every_checkpoint_of_an_ordinary_run_has_a_manifest_that_verifies()
    {
        var result = await _tiny.TrainAsync("plain", "colm.train.steps=6", "colm.train.checkpoint-every=2");
        Assert.Equal("completed", result.State);

        var checkpoints = CheckpointStore.All(RunDirectory.OpenExisting(_tiny.RunPath("plain"))).ToList();

        Assert.Equal([6L, 4L, 2L], checkpoints.Select(c => c.Step));
        foreach (var checkpoint in checkpoints)
        {
            Assert.True(File.Exists(checkpoint.Manifest), $"{checkpoint.Name} has no manifest");
            Assert.Equal(new CheckpointVerdict(null), CheckpointVerifier.Verify(checkpoint));
        }
    }

    [Fact]
    public async Task A_flipped_byte_in_the_newest_checkpoint_resumes_from_the_older_one_and_says_which_was_skipped_and_why()
    {
        var first = await _tiny.TrainAsync("flipped", "colm.train.steps=6", "colm.train.checkpoint-every=2", "colm.train.stop-at-step=4");
        Assert.Equal("stopped", first.State);
        FlipByte(CheckpointFile("flipped", 4, "trainer-state.bin"));

        var o = await ColmProcess.RunAsync(_tiny.Root, "train", "--resume", _tiny.RunPath("flipped"), "--set", "colm.train.stop-at-step=0");

        Assert.True(o.ExitCode == 0, o.Stderr);
        Assert.Contains("colm: skipped checkpoint step-000004: trainer-state.bin: SHA-256 does not match its manifest (file changed or damaged)", o.Stderr);
        Assert.Contains("resuming from step 2", o.Stdout);
        Assert.Contains("completed at step 6", o.Stdout);
        // The damaged one is kept aside; the resumed run wrote step 4 afresh, and it verifies.
        Assert.True(Directory.Exists(Path.Combine(_tiny.RunPath("flipped"), "checkpoints", ".step-000004.damaged")));
        var run = RunDirectory.OpenExisting(_tiny.RunPath("flipped"));
        Assert.All(CheckpointStore.All(run), c => Assert.Equal(new CheckpointVerdict(null), CheckpointVerifier.Verify(c)));
    }

    [Fact]
    public async Task A_cluster_resume_skips_a_damaged_checkpoint_and_the_nodes_accept_the_one_chosen()
    {
        var first = await _tiny.TrainAsync("nodes", "colm.train.steps=6", "colm.train.checkpoint-every=2", "colm.train.stop-at-step=4");
        Assert.Equal("stopped", first.State);
        FlipByte(CheckpointFile("nodes", 4, "coordinator.json"));

        using var nodes = await ColmNodes.StartAsync(_tiny.Root, trainerNodes: 1);
        var o = await ColmProcess.RunAsync(_tiny.Root, "train", "--cluster", nodes.Seed, "--quiet", "--resume", _tiny.RunPath("nodes"),
            "--set", "colm.train.stop-at-step=0");

        Assert.True(o.ExitCode == 0, $"exit {o.ExitCode}\n{o.Stderr}\nnode 0:\n{nodes.Output(0)}");
        Assert.Contains("colm: skipped checkpoint step-000004: coordinator.json: SHA-256 does not match its manifest", o.Stderr);
        Assert.Contains("\"completed\"", File.ReadAllText(Path.Combine(_tiny.RunPath("nodes"), "status.json")));
        Assert.Contains("\"step\":6", File.ReadAllText(Path.Combine(_tiny.RunPath("nodes"), "status.json")));
    }

    [Fact]
    public async Task When_every_checkpoint_is_damaged_the_resume_is_refused_naming_each_and_why()
    {
        var first = await _tiny.TrainAsync("ruined", "colm.train.steps=4", "colm.train.checkpoint-every=2");
        Assert.Equal("completed", first.State);
        FlipByte(CheckpointFile("ruined", 4, "trainer-state.bin"));
        Truncate(CheckpointFile("ruined", 2, "normalizer.bin"));

        var o = await ColmProcess.RunAsync(_tiny.Root, "train", "--quiet", "--resume", _tiny.RunPath("ruined"), "--set", "colm.train.steps=6");

        AssertRefusedInOneLine(o);
        Assert.Contains("no checkpoint verifies", o.Stderr);
        Assert.Contains("step-000004: trainer-state.bin: SHA-256 does not match its manifest", o.Stderr);
        Assert.Contains("step-000002: normalizer.bin: truncated: ", o.Stderr);
        Assert.True(File.Exists(CheckpointFile("ruined", 4, "trainer-state.bin")), "a refused resume moved a checkpoint");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_truncated_coordinator_state_of_the_only_checkpoint_is_one_clear_line(bool withManifest)
    {
        var first = await _tiny.TrainAsync("cut", "colm.train.steps=2");
        Assert.Equal("completed", first.State);
        Truncate(CheckpointFile("cut", 2, "coordinator.json"));
        if (!withManifest) File.Delete(CheckpointFile("cut", 2, "manifest.json")); // as an older colm wrote it

        var o = await ColmProcess.RunAsync(_tiny.Root, "train", "--quiet", "--resume", _tiny.RunPath("cut"), "--set", "colm.train.steps=4");

        AssertRefusedInOneLine(o);
        Assert.Contains("step-000002: coordinator.json: " + (withManifest ? "truncated" : "corrupt coordinator state"), o.Stderr);
    }

    [Fact]
    public async Task Resuming_with_fewer_training_examples_is_refused_naming_both_counts()
    {
        var first = await _tiny.TrainAsync("smaller", "colm.train.steps=2");
        Assert.Equal("completed", first.State);

        var o = await ColmProcess.RunAsync(_tiny.Root, "train", "--quiet", "--resume", _tiny.RunPath("smaller"),
            "--set", "colm.data.synthetic.train-examples=300", "--set", "colm.train.steps=4");

        AssertRefusedInOneLine(o);
        Assert.Contains("written for 400 training examples", o.Stderr);
        Assert.Contains("the data now has 300", o.Stderr);
        Assert.Contains("colm.data.", o.Stderr);
    }
}
