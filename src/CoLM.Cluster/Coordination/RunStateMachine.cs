using System.Collections.Immutable;
using CoLM.Cluster.Actors;
using CoLM.Cluster.Runs;
using CoLM.Data;
using CoLM.Selection;
using CoLM.Telemetry;
using CoLM.Training;
using CoLM.Training.Settings;

namespace CoLM.Cluster.Coordination;

/// <summary>What a run is: its settings and data, where it writes, and the checkpoint it resumes (if any).</summary>
public sealed record RunDefinition(ColmSettings Settings, DataMixture Data, string RunPath, string CheckpointsPath, CheckpointPaths? ResumeFrom, int SketchWidth);

/// <summary>
/// The run's coordinator as a plain state machine: no actors, no tensors. Each event (a trainer's
/// reply, a timer, a lost node) moves <see cref="State"/> on and returns what to do: messages to
/// send, timers to arm, a checkpoint to write, and records of what happened for the recorder.
/// CoordinatorActor is the shell that delivers events and carries the outputs out.
///
/// One step, top to bottom: <see cref="DoStep"/> draws the pool and sends each trainer its share to
/// sketch -> <see cref="OnSketches"/> selects the coreset (<see cref="StepPlanner"/>) and deals it
/// out -> <see cref="OnStepDone"/> commits the step when every trainer has applied it -> the
/// agenda runs an evaluation or checkpoint when due, then the next step. Registration and
/// synchronisation are in RunStateMachine.Startup.cs, checkpoints in RunStateMachine.Checkpoints.cs,
/// failures and recovery in RunStateMachine.Faults.cs, lost and joining members in
/// RunStateMachine.Membership.cs, hang detection in RunStateMachine.Hangs.cs.
/// </summary>
public sealed partial class RunStateMachine
{
    private readonly RunDefinition _def;
    private readonly ColmSettings _s;
    private readonly StepPlanner _planner;
    private readonly TimeProvider _clock;
    private readonly List<IRunOutput> _out = [];
    // Caches of what State names (the permutation of an epoch, the selector's working buffers);
    // brought back in line with State whenever it differs, so State stays the only truth.
    private readonly PoolSampler _sampler;
    private CoresetSelector _selector;
    private NormalizerState? _selectorAt;
    // Timings are observations, not state: a coordinator that takes over starts its own clocks.
    private long _phaseStartedAt, _stepStartedAt;
    // The recovery in progress: when its first restart arrived, and the source chosen for it.
    private long? _recoveryStartedAt;
    private (string Source, string From)? _recoverySource;

    public RunStateMachine(RunDefinition definition, RunState state, TimeProvider? clock = null)
    {
        _def = definition;
        _s = definition.Settings;
        _clock = clock ?? TimeProvider.System;
        _planner = new StepPlanner(_s, definition.Data, definition.SketchWidth);
        _sampler = new PoolSampler(definition.Data.Train.Count, _s.Run.Seed);
        _selector = _planner.NewSelector();
        State = state;
    }

    public RunState State { get; private set; }

    /// <summary>The state a run starts from: new, or read from the checkpoint it resumes (which must be of the same method).</summary>
    public static RunState Begin(RunDefinition definition)
    {
        if (definition.ResumeFrom is not { } resume) return RunState.New();
        var (state, normalizer) = CheckpointStore.Load(resume);
        if (state.Method != definition.Settings.Selection.Method.ToString())
            throw new RunDirectoryException(resume.Directory, $"written by a {state.Method} run, this run is {definition.Settings.Selection.Method}");
        return RunState.ResumedFrom(resume, state, normalizer, ToReport(definition.Data, 0, state.Baseline));
    }

    private int WorldSize => _s.Train.Trainers;

    /// <summary>Arms the registration timeout; call once when the coordinator starts.</summary>
    public IReadOnlyList<IRunOutput> Start()
    {
        _out.Clear();
        if (State.Phase != RunPhase.Finished)
            Emit(new ArmPhaseTimer(new PhaseTimedOut(State.Generation, State.Phase, State.Step), _s.Cluster.PhaseTimeout));
        return [.. _out];
    }

    public IReadOnlyList<IRunOutput> Handle(IRunEvent e)
    {
        _out.Clear();
        try
        {
            Dispatch(e);
        }
        catch (Exception error)
        {
            // Anything a handler throws ends the run with its cause: a coordinator that went on
            // would wait for replies it never asked for and fail later with a misleading message.
            // What the handler had decided before it threw is not carried out.
            _out.Clear();
            var faulted = Faulted(error, e);
            Fail(faulted.Error, faulted.BadInput);
        }
        return [.. _out];
    }

    /// <summary>
    /// How a failure while handling <paramref name="message"/> ends the run: bad input is named as
    /// such (exit 2); anything else is the coordinator's own failure, named with what it was handling.
    /// </summary>
    public static CoordinatorFaulted Faulted(Exception error, object message)
    {
        var (action, described) = FailurePolicy.Classify(error);
        return action == FailureAction.StopBadInput
            ? new CoordinatorFaulted(described, BadInput: true)
            : new CoordinatorFaulted($"the coordinator failed handling {message.GetType().Name}: {error.GetType().Name}: {error.Message}", BadInput: false);
    }

    private void Dispatch(IRunEvent e)
    {
        switch (e)
        {
            case TrainerJoined m: OnJoined(m); break;
            case Synchronised m: OnSynchronised(m); break;
            case Sketches m: OnSketches(m); break;
            case StepDone m: OnStepDone(m); break;
            case EvalDone m: OnEvalDone(m); break;
            case StateSaved m: OnStateSaved(m); break;
            case StateCopied m: OnStateCopied(m); break;
            case CheckpointWritten m: OnCheckpointWritten(m); break;
            case StopRequested m: State = State with { StopReason = State.StopReason ?? m.Reason }; break;
            default: HandleFault(e); break;
        }
    }

    // ---- The agenda: what the run does next ----------------------------------------------------

    private void RunAgenda()
    {
        var agenda = State.Agenda.IsEmpty ? [Duty.Step] : State.Agenda;
        // Trainers that joined mid-run are admitted between steps, never inside one.
        if (agenda[0] == Duty.Step && AdmitNewcomersAtStepBoundary()) return;
        State = State with { Current = agenda[0], Agenda = agenda.RemoveAt(0) };
        switch (agenda[0])
        {
            case Duty.Step: DoStep(); break;
            case Duty.Evaluate: DoEvaluate(); break;
            case Duty.Checkpoint: DoCheckpoint(); break;
        }
    }

    // ---- One step ------------------------------------------------------------------------------

    private void DoStep()
    {
        var train = _s.Train;
        if (train.StopAtStep > 0 && State.Step >= train.StopAtStep && State.Step < train.Steps)
            State = State with { StopReason = State.StopReason ?? $"colm.train.stop-at-step = {train.StopAtStep}" };
        if (State.Step >= train.Steps || State.StopReason is not null)
        {
            Finish();
            return;
        }

        long step = State.Step + 1;
        if (_sampler.State != State.Sampler) _sampler.Restore(State.Sampler);
        int[] pool = _sampler.Next(_s.Selection.Pool);
        State = State with
        {
            InProgress = new StepInProgress(step, [.. pool], _sampler.State, null,
            ImmutableSortedDictionary<int, Sketches>.Empty, null, ImmutableSortedDictionary<int, StepDone>.Empty)
        };
        _stepStartedAt = _clock.GetTimestamp();
        Emit(new StepStarted(step, State.Generation));

        var shares = _planner.SketchShares(pool, State.Ranks.Length);
        if (shares is null)
        {
            SelectAndTrain();
            return;
        }
        Transition(RunPhase.Sketching, State.AllRanks);
        var (kind, probeSeed, probes) = _planner.SketchRequest(step);
        foreach (int rank in State.AllRanks)
            Send(rank, new PoolAssignment(State.Generation, step, [.. shares[rank]], kind, probeSeed, probes));
    }

    private void OnSketches(Sketches m)
    {
        if (!Accept(m.Generation, m.Rank, RunPhase.Sketching)) return;
        State = State with { InProgress = State.InProgress! with { Sketches = State.InProgress.Sketches.SetItem(m.Rank, m) } };
        if (!State.Awaiting.IsEmpty) return;
        EndPhase(ColmInstruments.PhaseSketch);
        SelectAndTrain();
    }

    private void SelectAndTrain()
    {
        var inProgress = State.InProgress!;
        long step = inProgress.Step;
        // The selector continues from the committed normaliser, so a retried step selects exactly as the first attempt did.
        if (!ReferenceEquals(_selectorAt, State.Normalizer))
        {
            if (State.Normalizer is null) _selector = _planner.NewSelector();
            else _selector.RestoreNormalizer(State.Normalizer);
        }
        long started = _clock.GetTimestamp();
        var sketches = inProgress.Sketches.Values.Select(s => new StepPlanner.ShareSketch(s.Ids, s.Losses, s.Coefficients, s.Features));
        var selection = _planner.Select(_selector, [.. inProgress.Pool], sketches, step);
        _selectorAt = _selector.ExportNormalizer();
        Emit(new PhaseTimed(ColmInstruments.PhaseSelect, _clock.GetElapsedTime(started)));
        Emit(new CoresetSelected(step, selection));

        var shares = _planner.Deal(selection, State.Ranks.Length);
        bool checksum = step % _s.Train.ChecksumEvery == 0 || step == _s.Train.Steps;
        State = State with { InProgress = inProgress with { Selection = selection, NormalizerAfter = _selectorAt, Done = ImmutableSortedDictionary<int, StepDone>.Empty } };
        Transition(RunPhase.Training, State.AllRanks);
        foreach (int rank in State.AllRanks)
            Send(rank, new TrainAssignment(State.Generation, step, [.. shares[rank].Ids], [.. shares[rank].Weights], shares[rank].GlobalWeight, checksum));
    }

    private void OnStepDone(StepDone m)
    {
        if (State.Phase == RunPhase.Recovering && State.Abandoned is { } abandoned && m.Step == abandoned.Step && m.Generation == State.Generation)
            State = State with { Abandoned = abandoned with { Done = abandoned.Done.SetItem(m.Rank, m) } };
        if (!Accept(m.Generation, m.Rank, RunPhase.Training)) return;
        var inProgress = State.InProgress! with { Done = State.InProgress.Done.SetItem(m.Rank, m) };
        State = State with { InProgress = inProgress };
        if (!State.Awaiting.IsEmpty) return;
        EndPhase(ColmInstruments.PhaseTrain);

        var sums = inProgress.Done.Values.Where(d => d.Outcome.Checksum is not null).Select(d => (d.Rank, Sum: d.Outcome.Checksum!.Value)).ToArray();
        if (sums.Select(x => x.Sum).Distinct().Count() > 1)
        {
            Fail($"replica parameter checksums differ after step {inProgress.Step}: " + string.Join(", ", sums.Select(x => $"rank {x.Rank} {x.Sum:x16}")) +
                 $"; the replicas have diverged, so the run stops. The last checkpoint in {_def.CheckpointsPath} is intact");
            return;
        }
        CommitStep(inProgress, sums.Length > 0 ? sums[0].Sum : null);
        RunAgenda();
    }

    /// <summary>
    /// Every trainer applied the step (or, after a lost member, a replica holds it): it is
    /// committed with the sampler and normaliser it left, recorded, and the agenda set for what
    /// follows it. The loss is over the ranks that reported.
    /// </summary>
    private void CommitStep(StepInProgress inProgress, ulong? checksum)
    {
        long step = inProgress.Step;
        var done = inProgress.Done.Values;
        var selection = inProgress.Selection!;
        State = State with
        {
            Step = step,
            Sampler = inProgress.SamplerAfter,
            Normalizer = inProgress.NormalizerAfter,
            InProgress = null,
            Current = null,
            KnownChecksum = checksum is { } sum ? new CommittedChecksum(step, sum) : State.KnownChecksum,
        };
        double weight = selection.Weights.Sum(w => (double)w);
        int reported = done.Sum(d => d.Outcome.Examples);
        // A step committed from a replica after a member was lost has only the survivors' losses: their share of the weight.
        if (reported < selection.ExampleIds.Length) weight = weight * reported / Math.Max(1, selection.ExampleIds.Length);
        double loss = reported == 0 ? double.NaN : done.Sum(d => d.Outcome.WeightedLossSum) / Math.Max(1e-12, weight);
        Emit(new PhaseTimed(ColmInstruments.PhaseAllReduce, TimeSpan.FromSeconds(done.Select(d => d.Outcome.AllReduce.TotalSeconds).DefaultIfEmpty().Max())));
        var ranks = done.Select(d => new RankReport(d.Rank,
            inProgress.Sketches.TryGetValue(d.Rank, out var sketched) ? sketched.Elapsed.TotalSeconds : 0,
            d.Outcome.Compute.TotalSeconds, d.Outcome.AllReduce.TotalSeconds, d.Outcome.Optimizer.TotalSeconds, d.Outcome.PeakMemoryBytes));
        Emit(new StepCompleted(step, loss, selection.ExampleIds.Length, _clock.GetElapsedTime(_stepStartedAt), selection, State.Generation,
            [.. ranks.OrderBy(r => r.Rank)], done.Sum(d => d.Outcome.Tokens), done.Select(d => d.Outcome.GradNorm).DefaultIfEmpty().Max()));

        var train = _s.Train;
        bool evalDue = train.EvalEvery > 0 && step % train.EvalEvery == 0 && step < train.Steps;
        bool checkpointDue = train.CheckpointEvery > 0 && step % train.CheckpointEvery == 0 && step < train.Steps;
        var next = ImmutableArray.CreateBuilder<Duty>();
        if (evalDue) next.Add(Duty.Evaluate);
        if (checkpointDue) next.Add(Duty.Checkpoint);
        next.Add(Duty.Step);
        State = State with { Agenda = next.ToImmutable() };
    }

    // ---- Evaluation ----------------------------------------------------------------------------

    private void DoEvaluate()
    {
        State = State with { Evals = ImmutableSortedDictionary<int, EvalDone>.Empty };
        var shares = WorkShares.Split(Enumerable.Range(0, _def.Data.Heldout.Count).ToArray(), State.Ranks.Length);
        Transition(RunPhase.Evaluating, State.AllRanks);
        foreach (int rank in State.AllRanks) Send(rank, new EvalAssignment(State.Generation, State.Step, [.. shares[rank]]));
    }

    private void OnEvalDone(EvalDone m)
    {
        if (!Accept(m.Generation, m.Rank, RunPhase.Evaluating)) return;
        State = State with { Evals = State.Evals.SetItem(m.Rank, m) };
        if (!State.Awaiting.IsEmpty) return;
        EndPhase(ColmInstruments.PhaseEval);
        var data = _def.Data;
        var scores = new Dictionary<string, (int N, int Correct, double Loss)>();
        foreach (var e in State.Evals.Values)
        {
            for (int j = 0; j < e.Ids.Length; j++)
            {
                string source = data.SourceNames[data.Heldout[e.Ids[j]].SourceId];
                var (n, correct, loss) = scores.GetValueOrDefault(source);
                scores[source] = (n + 1, correct + (e.Outcome.ExactMatch[j] ? 1 : 0), loss + e.Outcome.Losses[j]);
            }
        }
        var bySource = scores.OrderBy(x => x.Key, StringComparer.Ordinal).ToDictionary(
            x => x.Key, x => new SourceScore(x.Value.N, (double)x.Value.Correct / x.Value.N, x.Value.Loss / x.Value.N));
        var report = ToReport(data, State.Step, bySource);
        State = State with { Before = State.Before ?? report, Last = report, Current = null };
        Emit(new Evaluated(report));
        RunAgenda();
    }

    /// <summary>
    /// The means are over sources the run trains on; a held-out-only source (a task no training
    /// example shows, like the built-in mixture's ood.compose) is reported on its own, so a task
    /// nobody trains for does not swamp the comparison of what training did.
    /// </summary>
    public static EvalReport ToReport(DataMixture data, long step, IReadOnlyDictionary<string, SourceScore> sources)
    {
        var trained = sources.Where(s => !data.HeldoutOnlySources.Contains(s.Key)).Select(s => s.Value).ToArray();
        var averaged = trained.Length > 0 ? trained : sources.Values.ToArray();
        return new(step, sources, averaged.Length == 0 ? 0 : averaged.Average(x => x.Accuracy), averaged.Length == 0 ? 0 : averaged.Average(x => x.Loss));
    }

    // ---- Ending --------------------------------------------------------------------------------

    /// <summary>Ends the run once the last step is evaluated and checkpointed, doing whichever is missing first.</summary>
    private void Finish()
    {
        if (State.Last is null || State.Last.Step != State.Step)
        {
            State = State with { Agenda = [Duty.Evaluate, Duty.Step] };
            RunAgenda();
            return;
        }
        if (State.LastCheckpoint is null || State.LastCheckpoint.Step != State.Step)
        {
            State = State with { Agenda = [Duty.Checkpoint, Duty.Step] };
            RunAgenda();
            return;
        }
        string outcome = State.StopReason is null ? "completed" : "stopped";
        if (State.StopReason is not null) Emit(new Noticed($"stopped after step {State.Step}: {State.StopReason}; resume with --resume {_def.RunPath}"));
        Transition(RunPhase.Finished, []);
        // A stop forced by too few trainers carries its reason as an error: the run is unfinished (exit 1).
        Emit(new RunCompleted(new RunResult(outcome, State.Step, _def.RunPath, State.Before, State.Last, State.StoppedShort ? State.StopReason : null),
            State.LastCheckpoint));
    }

    /// <summary>Ends the run as failed; <paramref name="badInput"/> when the cause is the user's data, settings, checkpoint or storage (exit 2).</summary>
    private void Fail(string error, bool badInput = false)
    {
        if (State.Phase == RunPhase.Finished) return;
        Log(RunLogLevel.Error, $"run failed: {error}");
        Transition(RunPhase.Finished, []);
        Emit(new RunFailed(new RunResult("failed", State.Step, _def.RunPath, State.Before, State.Last, error, badInput)));
    }

    // ---- Helpers -------------------------------------------------------------------------------

    /// <summary>True when a reply belongs to the current attempt; stale ones are dropped.</summary>
    private bool Accept(long generation, int rank, RunPhase expected)
    {
        if (State.Phase == RunPhase.Recovering)
        {
            State = State with { Awaiting = State.Awaiting.Remove(rank) };
            ResumeAfterRecoveryIfQuiet();
            return false;
        }
        if (generation != State.Generation || State.Phase != expected || !State.Awaiting.Contains(rank))
        {
            Log(RunLogLevel.Debug, $"dropped a stale reply from rank {rank} (generation {generation}, phase {expected})");
            return false;
        }
        State = State with { Awaiting = State.Awaiting.Remove(rank) };
        return true;
    }

    private void Transition(RunPhase next, IEnumerable<int> awaiting)
    {
        Emit(new PhaseChanged(State.Phase, next, State.Step + 1, State.Generation));
        State = State with { Phase = next, Awaiting = [.. awaiting] };
        _phaseStartedAt = _clock.GetTimestamp();
        if (!State.Awaiting.IsEmpty)
            Emit(new ArmPhaseTimer(new PhaseTimedOut(State.Generation, next, State.Step), _s.Cluster.PhaseTimeout));
        else
            Emit(new CancelPhaseTimer());
    }

    private void EndPhase(string phase) => Emit(new PhaseTimed(phase, _clock.GetElapsedTime(_phaseStartedAt)));

    // The trainer is named as well as the rank: a later output of the same event may re-deal the ranks.
    private void Send(int rank, IClusterMessage message) => Emit(new SendToTrainer(rank, State.Ranks[rank].Key, message));

    private void Log(RunLogLevel level, string message) => Emit(new Logged(level, message));

    private void Emit(IRunOutput output) => _out.Add(output);
}
