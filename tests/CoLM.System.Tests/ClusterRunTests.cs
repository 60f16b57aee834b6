using CoLM.Cluster.Runs;

namespace CoLM.System.Tests;

/// <summary>
/// The distributed run for real: `colm node` processes on loopback forming an Akka cluster over
/// TCP, trainers in different processes all-reducing over the TCP ring, a `colm train --cluster`
/// process submitting the run.
/// </summary>
public sealed class ClusterRunTests : IDisposable
{
    private const int Steps = 20;
    private readonly TinyRun _tiny = new();

    // One libtorch thread per trainer in both layouts: the in-process run's trainers then do
    // exactly the arithmetic of the node processes' trainers.
    private static readonly string[] SameThreads = ["colm.train.threads-per-trainer=1"];

    public void Dispose() => _tiny.Dispose();

    [Fact]
    public async Task Three_node_processes_train_bit_identical_parameters_to_one_process_with_the_same_trainers()
    {
        var local = await _tiny.TrainAsync("local", [$"colm.train.steps={Steps}", .. SameThreads]);
        Assert.Equal("completed", local.State);

        using var nodes = await ColmNodes.StartAsync(_tiny.Root, trainerNodes: 2, SameThreads);
        var submit = await ColmProcess.RunAsync(_tiny.Root, ["train", "--cluster", nodes.Seed, "--quiet",
            .. TinyRun.SetArgs(_tiny.Sets("cluster", [$"colm.train.steps={Steps}", .. SameThreads]))]);

        Assert.True(submit.ExitCode == 0, $"exit {submit.ExitCode}\n{submit.Stderr}\nnode 1:\n{nodes.Output(1)}");
        // Two trainer nodes with one device each: the same world size as the local run's two trainers.
        Assert.Equal(2, CoLM.Cluster.Configuration.HoconSources.ParseFile(Path.Combine(_tiny.RunPath("cluster"), "config.conf")).GetInt("colm.train.trainers"));
        Assert.Equal(TinyRun.FinalState(_tiny.RunPath("local"), Steps), TinyRun.FinalState(_tiny.RunPath("cluster"), Steps));
        Assert.Equal(StepLosses(_tiny.RunPath("local")), StepLosses(_tiny.RunPath("cluster")));
    }

    [Fact]
    public async Task A_coordinator_only_node_runs_a_job_on_a_model_folder_without_loading_libtorch()
    {
        // The shipped pretrained base is a model folder: the coordinator reads its config.json
        // (architecture, sketch width) but never a tensor, so libtorch stays on the trainer nodes.
        using var nodes = await ColmNodes.StartAsync(_tiny.Root, trainerNodes: 1, SameThreads);
        var submit = await ColmProcess.RunAsync(_tiny.Root, ["train", "--cluster", nodes.Seed, "--quiet",
            .. TinyRun.SetArgs(_tiny.Sets("folder", ["colm.train.steps=2", "colm.model.base=pretrained", .. SameThreads]))]);

        Assert.True(submit.ExitCode == 0, $"exit {submit.ExitCode}\n{submit.Stderr}\n{nodes.AllOutput()}");
        Assert.DoesNotContain(nodes.LoadedLibraries(0), l => l.StartsWith("libtorch", StringComparison.Ordinal)
            || l.StartsWith("libLibTorchSharp", StringComparison.Ordinal) || l.StartsWith("libc10", StringComparison.Ordinal));
        Assert.Contains("libtorch_cpu.so", nodes.LoadedLibraries(1));
    }

    [Fact]
    public async Task A_crash_of_trainer_rank_0_in_a_node_process_is_recovered_bit_identically()
    {
        const int Steps = 10;
        var local = await _tiny.TrainAsync("local", [$"colm.train.steps={Steps}", .. SameThreads]);
        Assert.Equal("completed", local.State);

        using var nodes = await ColmNodes.StartAsync(_tiny.Root, trainerNodes: 2, SameThreads);
        var submit = await ColmProcess.RunAsync(_tiny.Root, ["train", "--cluster", nodes.Seed, "--quiet",
            .. TinyRun.SetArgs(_tiny.Sets("crashed", [$"colm.train.steps={Steps}", "colm.train.fault-injection.crash-at-step=5",
                "colm.train.fault-injection.crash-rank=0", .. SameThreads]))]);

        Assert.True(submit.ExitCode == 0, $"exit {submit.ExitCode}\n{submit.Stderr}\nnode 1:\n{nodes.Output(1)}");
        Assert.Equal(Enumerable.Range(1, Steps).Select(i => (long)i), TrainingRunTests.StepLedger(_tiny.RunPath("crashed")));
        Assert.Single(File.ReadLines(Path.Combine(_tiny.RunPath("crashed"), "metrics.jsonl")), l => l.Contains("\"kind\":\"restart\""));
        Assert.Equal(TinyRun.FinalState(_tiny.RunPath("local"), Steps), TinyRun.FinalState(_tiny.RunPath("crashed"), Steps));
    }

    // The split-brain resolver decides after membership has been stable this long (default 20 s);
    // shorter here so the tests wait less. The decision itself is the one a deployment gets.
    private static readonly string[] QuickDowning = ["akka.cluster.split-brain-resolver.stable-after=5s"];

    /// <summary>
    /// Elastic membership with real processes (a coordinator node, two trainer nodes, a client):
    /// a trainer node killed with SIGKILL leaves the run, the survivor redoes the interrupted step
    /// alone and goes on; a replacement node that joins is offered the run, admitted at a step
    /// boundary and copies the survivor's replica; the run goes on with both (checksums compared
    /// every step) until the client is interrupted, and stops cleanly with a checkpoint. Every
    /// step is committed exactly once.
    /// </summary>
    [Fact]
    public async Task Killing_a_trainer_node_does_not_stop_the_run_and_a_replacement_node_is_admitted_mid_run()
    {
        const int SigInt = 2;
        using var nodes = await ColmNodes.StartAsync(_tiny.Root, trainerNodes: 2, [.. SameThreads, .. QuickDowning]);
        int client = 0;
        var submit = ColmProcess.RunAsync(_tiny.Root, pid => client = pid, ["train", "--cluster", nodes.Seed, "--quiet",
            .. TinyRun.SetArgs(_tiny.Sets("killed", ["colm.train.steps=100000", "colm.train.checkpoint-every=50", .. SameThreads]))]);
        var run = _tiny.RunPath("killed");
        await TinyRun.UntilMetricsShow(run, "step", submit);

        nodes.Kill(2);
        await TinyRun.UntilMetricsShow(run, "membership", submit);
        // A node can be made Up only once the dead one is downed (unreachable ~4 s, then stable-after 5 s).
        int replacement = await nodes.AddTrainerAsync(_tiny.Root, TimeSpan.FromSeconds(90), [.. SameThreads, .. QuickDowning]);
        await TinyRun.UntilMetricsShow(run, "membership", submit, count: 2);
        await TinyRun.UntilMoreSteps(run, 5, submit);
        Assert.Equal(0, ColmNodes.SendSignal(client, SigInt));
        var outcome = await submit;

        Assert.True(outcome.ExitCode == 130, $"exit {outcome.ExitCode}\n{outcome.Stderr}\n{nodes.AllOutput()}");
        Assert.Contains("\"stopped\"", File.ReadAllText(Path.Combine(run, "status.json")));
        var ledger = TrainingRunTests.StepLedger(run);
        Assert.Equal(Enumerable.Range(1, ledger.Length).Select(i => (long)i), ledger);
        Assert.Equal(ledger[^1], CheckpointStore.Latest(RunDirectory.OpenExisting(run))!.Step);
        var membership = File.ReadLines(Path.Combine(run, "metrics.jsonl")).Where(l => l.Contains("\"kind\":\"membership\"")).ToArray();
        Assert.True(membership.Length == 2, string.Join("\n", membership) + "\n" + nodes.Output(replacement));
        Assert.Contains("\"change\":\"lost\"", membership[0]);
        Assert.Contains("\"trainers\":1", membership[0]);
        Assert.Contains("\"change\":\"joined\"", membership[1]);
        Assert.Contains("\"trainers\":2", membership[1]);
        Assert.Contains(File.ReadLines(Path.Combine(run, "metrics.jsonl")), l => l.Contains("\"kind\":\"recovery\"") && l.Contains("\"source\":\"replica\""));
        Assert.False(nodes.HasExited(1), nodes.AllOutput());
    }

    /// <summary>
    /// A trainer node frozen with SIGSTOP (alive but silent) is noticed unreachable, leaves the run
    /// (the survivor's collective with it is aborted, not left to time out) and the run completes
    /// without it; once it runs again it finds itself removed and exits non-zero with a line saying
    /// so (so a supervisor restarts it) instead of running on with nothing listening.
    /// </summary>
    [Fact]
    public async Task A_frozen_trainer_node_leaves_the_run_which_completes_and_it_exits_non_zero_when_thawed()
    {
        const int SigStop = 19, SigCont = 18, Steps = 150;
        using var nodes = await ColmNodes.StartAsync(_tiny.Root, trainerNodes: 2, [.. SameThreads, .. QuickDowning]);
        var submit = ColmProcess.RunAsync(_tiny.Root, ["train", "--cluster", nodes.Seed, "--quiet",
            .. TinyRun.SetArgs(_tiny.Sets("frozen", [$"colm.train.steps={Steps}", "colm.cluster.collective-timeout=300s", .. SameThreads]))]);
        var run = _tiny.RunPath("frozen");
        await TinyRun.UntilMetricsShow(run, "step", submit);

        nodes.Signal(2, SigStop);
        var outcome = await submit.WaitAsync(TimeSpan.FromSeconds(240));
        Assert.True(outcome.ExitCode == 0, $"exit {outcome.ExitCode}\n{outcome.Stderr}\n{nodes.AllOutput()}");
        Assert.Equal(Enumerable.Range(1, Steps).Select(i => (long)i), TrainingRunTests.StepLedger(run));
        Assert.Contains(File.ReadLines(Path.Combine(run, "metrics.jsonl")), l => l.Contains("\"kind\":\"membership\"") && l.Contains("became unreachable"));

        // Unreachable for ~4 s, then 5 s of stable membership before the resolver downs it.
        await Task.Delay(TimeSpan.FromSeconds(12));
        nodes.Signal(2, SigCont);
        int exit = await nodes.WaitForExitAsync(2, TimeSpan.FromSeconds(60));
        Assert.NotEqual(0, exit);
        Assert.Contains("was removed from the cluster", nodes.Output(2));
        Assert.DoesNotContain("   at ", nodes.Output(2));
    }

    /// <summary>
    /// A trainer whose thread hangs in a live node process (it still sends heartbeats, so the
    /// cluster sees nothing wrong) is named from the heartbeats once its peer has waited
    /// colm.cluster.hang-timeout in the all-reduce it never entered, evicted like a lost node, and
    /// the run completes on the survivor long before the collective timeout.
    /// </summary>
    [Fact]
    public async Task A_hung_trainer_in_a_live_node_is_named_from_its_heartbeats_evicted_and_the_run_completes()
    {
        const int Steps = 40;
        using var nodes = await ColmNodes.StartAsync(_tiny.Root, trainerNodes: 2, [.. SameThreads, .. QuickDowning]);
        var started = DateTime.UtcNow;
        var outcome = await ColmProcess.RunAsync(_tiny.Root, ["train", "--cluster", nodes.Seed, "--quiet",
            .. TinyRun.SetArgs(_tiny.Sets("hung", [$"colm.train.steps={Steps}", "colm.train.fault-injection.hang-at-step=5",
                "colm.train.fault-injection.hang-rank=1", "colm.train.fault-injection.hang-for=170s", "colm.cluster.hang-timeout=5s",
                "colm.cluster.heartbeat-interval=1s", "colm.cluster.collective-timeout=300s", .. SameThreads]))]);
        var took = DateTime.UtcNow - started;

        var run = _tiny.RunPath("hung");
        Assert.True(outcome.ExitCode == 0, $"exit {outcome.ExitCode}\n{outcome.Stderr}\n{nodes.AllOutput()}");
        Assert.Equal(Enumerable.Range(1, Steps).Select(i => (long)i), TrainingRunTests.StepLedger(run));
        var evicted = Assert.Single(File.ReadLines(Path.Combine(run, "metrics.jsonl")), l => l.Contains("\"kind\":\"membership\""));
        Assert.Contains("trainer rank 1 on akka.tcp://", evicted);
        Assert.Contains("TrainAssignment of step 5", evicted);
        Assert.Contains("is silent: rank(s) 0 waited", evicted);
        Assert.True(took < TimeSpan.FromSeconds(150), $"the run took {took.TotalSeconds:0}s: it waited out the hang instead of evicting the rank");
        Assert.False(nodes.HasExited(2), nodes.AllOutput()); // alive, only its trainer hung
    }

    /// <summary>
    /// Below colm.train.min-trainers the run waits colm.cluster.membership-wait for nodes, then
    /// stops with a checkpoint of its last committed step, says so and exits non-zero; the
    /// survivors stay members, and a new node joins them and `--resume` finishes the run there.
    /// </summary>
    [Fact]
    public async Task Below_min_trainers_the_run_stops_with_a_checkpoint_and_resumes_on_a_new_node()
    {
        using var nodes = await ColmNodes.StartAsync(_tiny.Root, trainerNodes: 2, [.. SameThreads, .. QuickDowning]);
        var submit = ColmProcess.RunAsync(_tiny.Root, ["train", "--cluster", nodes.Seed, "--quiet",
            .. TinyRun.SetArgs(_tiny.Sets("short", ["colm.train.steps=2000", "colm.train.min-trainers=2", "colm.cluster.membership-wait=3s",
                .. SameThreads]))]);
        var run = _tiny.RunPath("short");
        await TinyRun.UntilMetricsShow(run, "step", submit);

        nodes.Kill(2);
        var outcome = await submit;

        Assert.Equal(1, outcome.ExitCode);
        Assert.Contains("run stopped unfinished after step", outcome.Stderr);
        Assert.Contains("fewer than colm.train.min-trainers = 2", outcome.Stderr);
        Assert.DoesNotContain("   at ", outcome.Stderr);
        var latest = CheckpointStore.Latest(RunDirectory.OpenExisting(run));
        Assert.NotNull(latest);
        Assert.Equal(TrainingRunTests.StepLedger(run).Last(), latest.Step);
        await Task.Delay(TimeSpan.FromSeconds(10));
        await ResumeOnTheSameClusterAsync(nodes, run, survivors: [0, 1]);
    }

    /// <summary>The survivors are still running members: a new trainer node joins them and `--resume` finishes the run there.</summary>
    private async Task ResumeOnTheSameClusterAsync(ColmNodes nodes, string run, int[] survivors)
    {
        foreach (int node in survivors)
        {
            Assert.False(nodes.HasExited(node), $"node {node} exited:\n{nodes.AllOutput()}");
            Assert.DoesNotContain("DownAll", nodes.Output(node));
        }
        int replacement = await nodes.AddTrainerAsync(_tiny.Root, TimeSpan.FromSeconds(90), [.. SameThreads, .. QuickDowning]);
        var latest = CheckpointStore.Latest(RunDirectory.OpenExisting(run));
        Assert.NotNull(latest);

        var resumed = await ColmProcess.RunAsync(_tiny.Root, ["train", "--cluster", nodes.Seed, "--quiet", "--resume", run,
            "--set", $"colm.train.steps={latest.Step + 2}"]);

        Assert.True(resumed.ExitCode == 0, $"exit {resumed.ExitCode}\n{resumed.Stderr}\nreplacement node:\n{nodes.Output(replacement)}");
        Assert.Contains("\"completed\"", File.ReadAllText(Path.Combine(run, "status.json")));
        Assert.Equal(latest.Step + 2, TrainingRunTests.StepLedger(run).Last());
    }

    /// <summary>
    /// Coordinator failover with real processes: three nodes with both roles (one trainer each) and
    /// a client. SIGKILL of the node hosting the coordinator (and trainer rank 0): the resolver downs
    /// it (down-if-alone), the coordinator singleton starts on the next oldest node, continues from
    /// the run's journal, drops the lost node's rank and goes on with the two survivors (checksums
    /// compared every step) until the client is interrupted and the run stops with a checkpoint.
    /// Every step is committed exactly once.
    /// </summary>
    [Fact]
    public async Task Killing_the_coordinators_node_fails_the_coordinator_over_and_the_run_goes_on()
    {
        const int SigInt = 2;
        using var nodes = await ColmNodes.StartAllRolesAsync(_tiny.Root, 3, [.. SameThreads, .. QuickDowning]);
        int client = 0;
        var submit = ColmProcess.RunAsync(_tiny.Root, pid => client = pid, ["train", "--cluster", nodes.Seed,
            .. TinyRun.SetArgs(_tiny.Sets("failover", ["colm.train.steps=100000", "colm.train.checkpoint-every=50", .. SameThreads]))]);
        var run = _tiny.RunPath("failover");
        await TinyRun.UntilMetricsShow(run, "step", submit);

        nodes.Kill(0);
        await TinyRun.UntilMetricsShow(run, "membership", submit);
        await TinyRun.UntilMoreSteps(run, 5, submit);
        Assert.Equal(0, ColmNodes.SendSignal(client, SigInt));
        var outcome = await submit;

        Assert.True(outcome.ExitCode == 130, $"exit {outcome.ExitCode}\n{outcome.Stderr}\n{nodes.AllOutput()}");
        Assert.Contains("coordinator taking over the run", outcome.Stdout + outcome.Stderr);
        Assert.Contains("\"stopped\"", File.ReadAllText(Path.Combine(run, "status.json")));
        var ledger = TrainingRunTests.StepLedger(run);
        Assert.Equal(Enumerable.Range(1, ledger.Length).Select(i => (long)i), ledger);
        Assert.Equal(ledger[^1], CheckpointStore.Latest(RunDirectory.OpenExisting(run))!.Step);
        var lost = Assert.Single(File.ReadLines(Path.Combine(run, "metrics.jsonl")), l => l.Contains("\"kind\":\"membership\""));
        Assert.Contains("\"change\":\"lost\"", lost);
        Assert.Contains("\"trainers\":2", lost);
        Assert.False(nodes.HasExited(1), nodes.AllOutput());
        Assert.False(nodes.HasExited(2), nodes.AllOutput());
    }

    [Fact]
    public async Task Killing_the_coordinator_node_ends_the_client_with_a_message_instead_of_hanging()
    {
        using var nodes = await ColmNodes.StartAsync(_tiny.Root, trainerNodes: 1, [.. SameThreads, .. QuickDowning]);
        var submit = ColmProcess.RunAsync(_tiny.Root, ["train", "--cluster", nodes.Seed, "--quiet",
            .. TinyRun.SetArgs(_tiny.Sets("headless", ["colm.train.steps=2000", .. SameThreads]))]);
        await TinyRun.UntilMetricsShow(_tiny.RunPath("headless"), "step", submit);

        nodes.Kill(0);
        var outcome = await submit;

        Assert.Equal(1, outcome.ExitCode);
        Assert.Contains("run's coordinator did not report", outcome.Stderr);
        Assert.DoesNotContain("   at ", outcome.Stderr);
        // The coordinator could not record its own loss: the client did, with the reason.
        var status = File.ReadAllText(Path.Combine(_tiny.RunPath("headless"), "status.json"));
        Assert.Contains("\"failed\"", status);
        Assert.Contains("did not report", status);
        // Without the oldest coordinator-role node the trainer node downs itself and exits non-zero,
        // so its supervisor restarts it to join a coordinator again.
        Assert.NotEqual(0, await nodes.WaitForExitAsync(1, TimeSpan.FromSeconds(60)));
        Assert.Contains("was removed from the cluster", nodes.Output(1));
    }

    [Fact]
    public async Task Launch_starts_the_nodes_streams_their_output_with_a_prefix_and_stops_them_at_the_end()
    {
        var outcome = await ColmProcess.RunAsync(_tiny.Root, ["launch", "--nodes", "2",
            .. TinyRun.SetArgs(_tiny.Sets("launched", ["colm.train.steps=3", .. SameThreads]))]);

        Assert.True(outcome.ExitCode == 0, $"exit {outcome.ExitCode}\n{outcome.Stdout}\n{outcome.Stderr}");
        Assert.Contains("[node-0] colm node: node up at", outcome.Stdout);
        Assert.Contains("[node-1] colm node: node up at", outcome.Stdout);
        Assert.Contains("[node-1] colm node: leaving the cluster", outcome.Stdout);
        Assert.Contains("completed at step 3", outcome.Stdout);
    }

    [Fact]
    public async Task A_node_leaves_the_cluster_cleanly_on_SIGTERM()
    {
        using var nodes = await ColmNodes.StartAsync(_tiny.Root, trainerNodes: 1);

        int exit = await nodes.TerminateAsync(1, TimeSpan.FromSeconds(30));

        Assert.Equal(0, exit);
        Assert.Contains("leaving the cluster (stopped)", nodes.Output(1));
        Assert.DoesNotContain("   at ", nodes.Output(1));
    }

    [Fact]
    public async Task A_cluster_that_cannot_be_reached_is_reported_by_address_within_the_join_timeout()
    {
        var outcome = await ColmProcess.RunAsync(_tiny.Root, ["train", "--cluster", "127.0.0.1:1", "--set", "colm.cluster.join-timeout=3s",
            .. TinyRun.SetArgs(_tiny.Sets("nowhere"))]);

        Assert.Equal(1, outcome.ExitCode);
        Assert.Contains("could not join the cluster through 127.0.0.1:1", outcome.Stderr);
    }


    private static string[] StepLosses(string run) =>
        [.. File.ReadLines(Path.Combine(run, "metrics.jsonl")).Where(l => l.Contains("\"kind\":\"step\""))
            .Select(l => l[l.IndexOf("\"loss\"", StringComparison.Ordinal)..].Split(',')[0])];
}
