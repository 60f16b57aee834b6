using CoLM.Cli.Quality;
using CoLM.Cluster.Configuration;
using CoLM.Cluster.Hosting;
using CoLM.Cluster.Runs;
using CoLM.Data;
using CoLM.Training;

namespace CoLM.Cli;

/// <summary>`colm`: the entry point of every verb. Exit codes: 0 done, 1 run failed, 2 bad input, 130 interrupted.</summary>
public static class ColmCommand
{
    public const int Ok = 0, RunFailed = 1, BadInput = 2, Interrupted = 130;

    private const string Usage = """
        usage:
          colm train [--model HF_FOLDER] [--data FILE.jsonl] [--config FILE.conf]... [--set colm.key=value]... [--resume RUN_DIR] [--quiet]
              Trains with CoLM coresets. With no arguments: the embedded default (a small
              Llama-style model with LoRA on the built-in 10-source mixture, 2 trainer actors).
          colm bench step [--config FILE.conf]... [--set colm.key=value]...
              One CoLM step (pool L, coreset b) split into sketch, select, train and all-reduce,
              against a big-batch step on L, with peak memory above the process baseline.
          colm bench fidelity [--set colm.key=value]...
              How well zeroth-order sketches with K = 1, 4, 16, 64 probes preserve the pairwise
              distances of exact last-layer gradient features on the same pool.
          colm eval --model HF_FOLDER [--adapter PEFT_DIR] --data FILE.jsonl [--task math|classification --labels a,b]
                    [--max-new-tokens N] [--out DIR]
              Greedy generation (KV cache) on every example; math: the final number or choice is
              compared with the target; classification: accuracy over label words. Writes
              predictions.jsonl and eval.md (per-source accuracy) to DIR (default runs/eval-TIME).
          colm export --model HF_FOLDER --adapter PEFT_DIR --out DIR [--dtype float32|float16|bfloat16]
              Merges the adapter into the base weights and writes a full Hugging Face model folder.
          colm train ... --adapter PEFT_DIR continues training from an adapter (e.g. RUN/adapter).
          colm data inspect FILE.jsonl [--set colm.data.fields.source=...] [--set colm.data.max-length=N]
              Sources, counts, which are small, token length percentiles and how many examples
              would be truncated (with --model, that folder's tokenizer; the Alpaca template as a run applies it).
          colm pretrain [--out DIR] [--set colm.pretrain.steps=N] [--set colm.model.dim=N]...
              Pretrains the built-in decoder on every weight over a broad synthetic corpus and saves it as
              a Hugging Face Llama folder (default models/colm-base) to fine-tune with
              `colm train --model DIR`. The shipped base (colm.model.base = pretrained) was made this way.
          colm bench quality [--methods a,b,...] [--seeds N] [--lr R1,R2,...|none] [--out DIR] [--set colm.key=value]...
              Trains each method x seed x learning rate (default 0.003,0.006) on the same model, data and
              steps, reports each method at its best rate with paired 95% intervals against random 2b and
              source-balanced random: a table (markdown + CSV) and loss plots (PNG); resumes a partly finished one.
          colm bench matching [--every N] [--pools N] [--out DIR] [--model M --data D] [--set colm.key=value]...
              Will CoLM help on this model and data? Trains the configured run, and at step 0 and every
              N steps compares each method's coreset gradient with the whole pool's on the same pools
              (||g_coreset - g_pool|| / ||g_pool||) and with the held-out loss's gradient (cosine):
              matching.md and matching.csv in DIR (default runs/matching).

          colm dashboard RUN_DIR [--set colm.telemetry.http-port=N]
              Serves the live dashboard page of one run directory (finished, failed or running) at
              http://127.0.0.1:9464/ until Ctrl-C. Every colm process serves it too, for its own runs.

          colm node [--seed-nodes HOST:PORT,...] [--roles coordinator,trainer] [--host ADDR] [--public-host NAME]
                    [--port N] [--devices cpu:N|auto] [--config FILE.conf]... [--set colm.key=value]...
              Starts one cluster member that waits for runs (Ctrl-C or SIGTERM leaves the cluster).
              With no seed nodes it starts a new cluster; others join it with --seed-nodes.
          colm train --cluster HOST:PORT [train options]
              Submits the run to a running cluster (any member's address) and streams its progress;
              every trainer of the cluster takes part. The run directory must be on storage all nodes share.
          colm launch --nodes N [--coordinators K] [train options]
              Starts N local node processes (node 0 coordinator, the rest trainers; N = 1 both) and
              the run on them; prefixes their output with [node-i] and stops them when the run ends.
              K >= 3: nodes 1..K-1 also stand by as coordinators (the run survives losing node 0).
          colm bench cluster [--rounds N] [--set colm.train.steps=N] [--out FILE.md]
              Per-step time of the same run in one process (2 trainers) and on 3 node processes
              (coordinator + 2 trainer nodes over loopback TCP); reports the cluster's overhead.
          colm bench chaos [--nodes N] [--set colm.key=value]... [--out FILE.md]
              A long run on N (>= 4) local node processes with both roles, with faults injected in turn
              (SIGKILL of a trainer node, SIGSTOP of one, SIGKILL of the coordinator's node during a
              checkpoint save, two nodes killed 2 s apart), each lost node restarted to rejoin; reports
              detection and recovery times, rejoin stalls, steps lost and the fraction of useful work.
          colm bench allreduce [--ranks 2,4] [--sizes 1,4,16,64,256] [--iterations N] [--segment-kib N] [--out FILE.md]
              TCP ring all-reduce bus bandwidth (nccl-tests' busbw) on loopback against the loopback
              TCP limit measured in the same run.

        Settings and their defaults: hocon/colm.conf. Example:
          colm train --set colm.train.steps=100 --set colm.selection.method=random
        """;

    public static async Task<int> RunAsync(string[] args, CancellationToken external)
    {
        try
        {
            var cl = CommandLine.Parse(args);
            if (cl.Help || cl.Verb.Length == 0)
            {
                Console.WriteLine(Usage);
                return cl.Help ? Ok : BadInput;
            }
            if (cl.Arguments.Count > 0 && cl.Verb is not ("data inspect" or "dashboard"))
                throw new UsageException($"unexpected argument '{cl.Arguments[0]}' for '{cl.Verb}'");
            return cl.Verb switch
            {
                "train" when cl.Options.TryGetValue("cluster", out var seed) => await ClusterTrainAsync(cl, seed, expectedNodes: 0, external),
                "train" => await TrainAsync(cl, external),
                "node" => await NodeCommand.RunAsync(cl, external),
                "launch" => await LaunchCommand.RunAsync(cl, external),
                "bench cluster" => await ClusterOverheadBenchmark.RunAsync(cl, external),
                "bench chaos" => await ChaosBenchmark.RunAsync(cl, external),
                "bench allreduce" => AllReduceBenchmark.Run([.. cl.Options.SelectMany(o => o.Value.Length == 0 ? new[] { "--" + o.Key } : new[] { "--" + o.Key, o.Value })]),
                "bench step" => StepBenchmark.Run(cl.ConfigFiles, cl.Sets),
                "bench fidelity" => SketchFidelityBenchmark.Run(cl.ConfigFiles, cl.Sets),
                "bench quality" => await QualityBenchmark.RunAsync(cl, external),
                "bench matching" => await MatchingBenchmark.RunAsync(cl, external),
                "data inspect" => DataInspectCommand.Run(cl),
                "dashboard" => await DashboardCommand.RunAsync(cl, external),
                "eval" => EvalCommand.Run(cl),
                "export" => ExportCommand.Run(cl),
                "pretrain" => PretrainCommand.Run(cl, external),
                _ => throw new UsageException($"unknown command '{cl.Verb}'"),
            };
        }
        catch (Exception e) when (IsBadInput(e))
        {
            Console.Error.WriteLine($"colm: error: {Cluster.Runs.BadInput.Describe(e) ?? e.Message}");
            if (e is UsageException) Console.Error.WriteLine("run `colm --help` for usage");
            return BadInput;
        }
        catch (QualityRunFailedException e)
        {
            Console.Error.WriteLine($"colm: a comparison run failed: {e.Message}");
            return RunFailed;
        }
        catch (Exception e)
        {
            // Not the user's input: say what broke in one line; the trace only on request.
            Console.Error.WriteLine($"colm: internal error: {e.GetType().Name}: {e.Message}");
            if (Environment.GetEnvironmentVariable("COLM_DEBUG") == "1") Console.Error.WriteLine(e);
            else Console.Error.WriteLine("set COLM_DEBUG=1 for the stack trace");
            return RunFailed;
        }
    }

    private static async Task<int> TrainAsync(CommandLine cl, CancellationToken external)
    {
        var plan = RunPlan.Prepare(cl.ConfigFiles, cl.Sets, cl.Resume);
        PrintNotices(plan);
        var progress = new ConsoleProgress(cl.Quiet);
        using var interrupt = CancellationTokenSource.CreateLinkedTokenSource(external);
        using var ctrlC = StopOnFirstCtrlC(interrupt, progress);
        try
        {
            var s = plan.Settings;
            if (!cl.Quiet)
            {
                Console.WriteLine($"colm: run {plan.Run.Path}");
                Console.WriteLine($"colm: {plan.Data.Train.Count} train / {plan.Data.Heldout.Count} held-out examples from {plan.Data.SourceNames.Count} sources ({plan.Data.TruncatedCount} truncated); " +
                                  $"{s.Selection.Method} L={s.Selection.Pool} b={s.Selection.TrainedPerStep}, {s.Train.Trainers} trainers, {s.Train.Steps} steps" +
                                  (plan.ResumeFrom is { } r ? $", resuming from step {r.Step}" : ""));
            }
            var result = await LocalRun.RunAsync(plan, progress, interrupt.Token);
            for (int failures = 0; RunRestarts.ShouldRestart(result, plan, failures, interrupt.IsCancellationRequested); failures++)
            {
                progress.EndLine();
                plan = RunPlan.Prepare(cl.ConfigFiles, RunRestarts.SetsFor(cl.Sets), plan.Run.Path);
                PrintNotices(plan);
                result = await LocalRun.RunAsync(plan, progress, interrupt.Token);
            }
            progress.EndLine();
            return Finish(result, plan, cl.Quiet, interrupt.IsCancellationRequested && !external.IsCancellationRequested);
        }
        catch (Exception e)
        {
            progress.EndLine();
            TryWriteFailedStatus(plan, Cluster.Runs.BadInput.Describe(e) ?? e.Message, plan.ResumeFrom?.Step ?? 0);
            throw;
        }
    }

    /// <summary>`colm train --cluster`: the same progress and report as a local run; the run happens on the cluster's nodes.</summary>
    internal static async Task<int> ClusterTrainAsync(CommandLine cl, string seed, int expectedNodes, CancellationToken external)
    {
        var progress = new ConsoleProgress(cl.Quiet);
        using var interrupt = CancellationTokenSource.CreateLinkedTokenSource(external);
        using var ctrlC = StopOnFirstCtrlC(interrupt, progress);
        RunPlan? plan = null;
        try
        {
            void Started(ClusterRunStart start)
            {
                plan = start.Plan;
                PrintNotices(start.Plan);
                if (cl.Quiet) return;
                var s = start.Plan.Settings;
                Console.WriteLine($"colm: run {start.Plan.Run.Path}");
                foreach (var node in start.Nodes)
                    Console.WriteLine($"colm: node {node.Node} roles {string.Join(",", node.Roles)} trainers {node.Trainers}");
                Console.WriteLine($"colm: {start.Plan.Data.Train.Count} train / {start.Plan.Data.Heldout.Count} held-out examples; " +
                                  $"{s.Selection.Method} L={s.Selection.Pool} b={s.Selection.TrainedPerStep}, {s.Train.Trainers} trainers on " +
                                  $"{start.Nodes.Count(n => n.Trainers > 0)} node(s), {s.Train.Steps} steps" +
                                  (start.Plan.ResumeFrom is { } r ? $", resuming from step {r.Step}" : ""));
            }

            var submission = new ClusterSubmission(seed, cl.ConfigFiles, cl.Sets, cl.Resume, expectedNodes);
            var result = await ClusterRunClient.RunAsync(submission, progress, Started, interrupt.Token);
            for (int failures = 0; RunRestarts.ShouldRestart(result, plan!, failures, interrupt.IsCancellationRequested); failures++)
            {
                // Resubmitted to the nodes present now: the run is sized to their trainers again.
                progress.EndLine();
                TryWriteFailedStatus(plan!, result.Error ?? "failed", result.Step);
                submission = new ClusterSubmission(seed, cl.ConfigFiles, RunRestarts.SetsFor(cl.Sets), plan!.Run.Path, 0);
                result = await ClusterRunClient.RunAsync(submission, progress, Started, interrupt.Token);
            }
            progress.EndLine();
            // The coordinator writes status.json itself, unless it is what was lost: say so here too.
            if (result.State == "failed") TryWriteFailedStatus(plan!, result.Error ?? "failed", result.Step);
            return Finish(result, plan!, cl.Quiet, interrupt.IsCancellationRequested && !external.IsCancellationRequested);
        }
        catch (Exception e) when (e is ClusterRunException or ClusterJoinException)
        {
            progress.EndLine();
            Console.Error.WriteLine($"colm: error: {e.Message}");
            if (plan is not null) TryWriteFailedStatus(plan, e.Message, plan.ResumeFrom?.Step ?? 0);
            return RunFailed;
        }
    }

    /// <summary>
    /// First Ctrl-C: finish the step, checkpoint, stop (the token is cancelled). A second one is
    /// left to the runtime, which kills the process. Disposing removes the handler.
    /// </summary>
    private static IDisposable StopOnFirstCtrlC(CancellationTokenSource interrupt, ConsoleProgress progress)
    {
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            if (interrupt.IsCancellationRequested) return;
            e.Cancel = true;
            progress.OnNotice("interrupt: stopping after this step with a checkpoint (Ctrl-C again to abort)");
            interrupt.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        return new Unsubscribe(() => Console.CancelKeyPress -= onCancel);
    }

    private sealed class Unsubscribe(Action undo) : IDisposable
    {
        public void Dispose() => undo();
    }

    private static void TryWriteFailedStatus(RunPlan plan, string error, long step)
    {
        try
        {
            plan.Run.WriteStatus("failed", error, step);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"colm: could not record the failure in {plan.Run.StatusFile}: {e.Message}");
        }
    }

    /// <summary>A damaged checkpoint skipped on resume is worth seeing even with --quiet: on stderr.</summary>
    private static void PrintNotices(RunPlan plan)
    {
        foreach (var notice in plan.Notices) Console.Error.WriteLine($"colm: {notice}");
    }

    private static int Finish(RunResult result, RunPlan plan, bool quiet, bool interrupted)
    {
        if (result.State == "failed")
        {
            Console.Error.WriteLine($"colm: run failed: {result.Error}");
            return result.BadInput ? BadInput : RunFailed;
        }
        if (result.State == "stopped" && result.Error is not null)
        {
            // Stopped with a checkpoint, but not finished and not by request (too few trainers left).
            Console.Error.WriteLine($"colm: run stopped unfinished after step {result.Step}: {result.Error}; resume with --resume {result.RunDirectory}");
            return RunFailed;
        }
        if (!quiet)
        {
            Console.WriteLine();
            if (File.Exists(plan.Run.ReportFile)) Console.WriteLine(File.ReadAllText(plan.Run.ReportFile));
            Console.WriteLine($"colm: {result.State} at step {result.Step}; run directory {result.RunDirectory}");
        }
        return interrupted ? Interrupted : Ok;
    }

    private static bool IsBadInput(Exception e) => e is UsageException || Cluster.Runs.BadInput.Is(e);
}
