using System.Collections.Immutable;
using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using CoLM.Cluster.Runs;
using CoLM.Data;
using CoLM.Selection;
using CoLM.Telemetry;
using CoLM.Training;

namespace CoLM.Cluster.Actors;

/// <summary>
/// The run's coordinator, a cluster singleton. It owns the pool sampler, the selector (with
/// its normaliser history) and the schedule; trainers own the model replicas. One step:
/// pool -> sketches from every trainer -> select coreset -> balanced train assignment ->
/// all trainers report StepDone -> maybe evaluate / checkpoint -> next step.
/// </summary>
public sealed class CoordinatorActor : ReceiveActor, IWithTimers
{
    /// <summary>The coordinator's phases; every transition is logged [old -> new].</summary>
    private enum Phase
    {
        WaitingForTrainers, // until colm.train.trainers have registered
        Inspecting,         // after a trainer restart: every replica reports its step and checksum, to choose the source
        Synchronising,      // replicas made identical (start, resume, or after a trainer restart)
        Sketching,          // trainers compute zeroth-order sketches of their share of the pool
        Training,           // trainers step on their share of the coreset
        Evaluating,         // held-out evaluation, split across trainers
        Checkpointing,      // rank 0 writes its replica state, then the coordinator completes the checkpoint
        Recovering,         // a trainer restarted: waiting for the others' outstanding replies
        Finished,           // completed, stopped or failed; nothing more happens
    }

    private const string PhaseTimerKey = "phase-timeout";
    private const string RestartGraceTimerKey = "restart-grace";

    private readonly CoordinatorContext _ctx;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly SortedDictionary<int, IActorRef> _trainers = new();      // by rank, once dealt out
    private readonly Dictionary<TrainerKey, RegisterTrainer> _registered = new();
    private readonly Dictionary<TrainerKey, int> _ranks = new();
    private readonly List<string> _endpoints = new();                         // data-plane endpoint of each rank
    private readonly HashSet<int> _awaiting = new();
    private readonly CoresetSelector _selector;
    private readonly PoolSampler _sampler;
    private readonly bool[] _isSmallSource;
    private readonly CheckpointStore _checkpoints;
    private readonly Stopwatch _runClock = new();
    private readonly long _runClockOffsetSteps;
    private readonly int _sketchWidth;

    private Phase _phase = Phase.WaitingForTrainers;
    private long _generation;
    private long _step;                 // the step in progress (1-based), or the last completed one between steps
    private string? _stopReason;
    private Dictionary<string, SourceScore>? _baseline;
    private EvalReport? _before;
    private EvalReport? _last;

    // State of the step in progress.
    private int[] _pool = [];
    private SamplerState _samplerAtStepStart = new(0, 0);
    private NormalizerState? _normalizerAtStepStart;
    private readonly Dictionary<int, Sketches> _sketches = new();
    private readonly Dictionary<int, StepDone> _done = new();
    private readonly Dictionary<int, EvalDone> _evals = new();
    private readonly Dictionary<int, Synchronised> _synced = new();
    private readonly Dictionary<int, ReplicaInspected> _inspected = new();
    // Ranks named by another rank as "did not arrive" at a collective this generation (a hung rank).
    private readonly SortedSet<int> _notArrived = new();
    private readonly SortedSet<int> _reportedFailure = new();
    // The replicas' checksum at a committed step, when one was taken: evidence for choosing a recovery source.
    private (long Step, ulong Checksum)? _knownChecksum;
    private CoresetSelection? _selection;
    private Activity? _stepSpan;
    private Activity? _phaseSpan;
    private readonly Stopwatch _phaseClock = new();
    private readonly Stopwatch _stepClock = new();
    private readonly Dictionary<string, double> _phaseSeconds = new();
    private Action? _afterEvaluation;
    // What the run does once the replicas are synchronised: the first evaluation, the next step, or
    // the evaluation or checkpoint a trainer restart interrupted.
    private Action? _afterSynchronise;
    private CheckpointPaths? _partialCheckpoint;

    public CoordinatorActor(CoordinatorContext ctx)
    {
        _ctx = ctx;
        var s = ctx.Settings;
        try
        {
            _isSmallSource = Hosting.SmallSourceShare.Flags(s.Selection, ctx.Data);
            _sketchWidth = TrainerReplica.SketchWidth(s);
            _selector = new CoresetSelector(s.Selection.ToOptions(), _isSmallSource, featureDim: _sketchWidth);
            _sampler = new PoolSampler(ctx.Data.Train.Count, s.Run.Seed);
            _checkpoints = new CheckpointStore(ctx.Run, s.Train.KeepCheckpoints);
            if (ctx.ResumeFrom is { } resume)
            {
                var (state, normalizer) = CheckpointStore.Load(resume);
                if (state.Method != s.Selection.Method.ToString())
                    throw new RunDirectoryException(resume.Directory, $"written by a {state.Method} run, this run is {s.Selection.Method}");
                _step = state.Step;
                _sampler.Restore(CheckpointStore.Sampler(state));
                _selector.RestoreNormalizer(normalizer);
                _baseline = new Dictionary<string, SourceScore>(state.Baseline);
                _before = ToReport(0, _baseline);
                _runClockOffsetSteps = state.Step;
            }
        }
        catch (Exception e)
        {
            // A coordinator that cannot start would leave the singleton silently absent: end the run instead.
            ctx.Completion.TrySetException(e);
            throw;
        }

        Receive<RegisterTrainer>(OnRegister);
        Receive<TrainerRestarted>(OnTrainerRestarted);
        Receive<ReplicaInspected>(OnReplicaInspected);
        Receive<Synchronised>(OnSynchronised);
        Receive<Sketches>(OnSketches);
        Receive<StepDone>(OnStepDone);
        Receive<EvalDone>(OnEvalDone);
        Receive<StateSaved>(OnStateSaved);
        Receive<StepFailed>(OnStepFailed);
        Receive<StopRequested>(m => _stopReason ??= m.Reason);
        Receive<PhaseTimedOut>(OnPhaseTimedOut);
        Receive<NoRestartFollowed>(OnNoRestartFollowed);
        Receive<Terminated>(OnTrainerTerminated);
        Receive<ClusterEvent.UnreachableMember>(m => OnNodeLost(m.Member.Address, "became unreachable"));
        Receive<ClusterEvent.MemberRemoved>(m => OnNodeLost(m.Member.Address, "left the cluster"));
        Receive<ClusterEvent.IMemberEvent>(_ => { });
        Receive<ClusterEvent.CurrentClusterState>(_ => { });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    protected override void PreStart()
    {
        Timers.StartSingleTimer(PhaseTimerKey, new PhaseTimedOut(_generation, Phase.WaitingForTrainers, _step), _ctx.Settings.Cluster.PhaseTimeout);
        Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
            typeof(ClusterEvent.UnreachableMember), typeof(ClusterEvent.MemberRemoved));
    }

    protected override void PostStop() => Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);

    public static Props Props(CoordinatorContext ctx) => Akka.Actor.Props.Create(() => new CoordinatorActor(ctx));

    private int WorldSize => _ctx.Settings.Train.Trainers;

    // ---- Start-up ------------------------------------------------------------------------------

    private void OnRegister(RegisterTrainer m)
    {
        var key = new TrainerKey(m.Node, m.LocalIndex);
        if (_phase != Phase.WaitingForTrainers)
        {
            // Membership is fixed once ranks are dealt out; until elastic membership exists a
            // newcomer cannot be folded in, and ignoring it would leave its node waiting forever.
            Fail($"trainer {m.LocalIndex} on {m.Node} joined after the run started with {WorldSize} trainers; " +
                 $"changing membership mid-run is not supported. The last checkpoint in {_ctx.Run.CheckpointsPath} is intact");
            return;
        }
        if (_registered.ContainsKey(key))
        {
            Fail($"two trainers registered as device {m.LocalIndex} of {m.Node}");
            return;
        }
        _registered[key] = m;
        Context.Watch(m.Trainer);
        _log.Info("trainer {0} on {1} registered ({2}/{3})", m.LocalIndex, m.Node, _registered.Count, WorldSize);
        if (_registered.Count > WorldSize)
        {
            Fail($"{_registered.Count} trainers registered but colm.train.trainers = {WorldSize}");
            return;
        }
        if (_registered.Count == WorldSize)
        {
            DealRanks();
            _afterSynchronise = _ctx.ResumeFrom is null ? () => Evaluate(then: NextStep) : NextStep;
            _generation++;
            StartSynchronise(_trainers.Keys.First(), _ctx.ResumeFrom?.TrainerState);
        }
    }

    /// <summary>Ranks in (node address, device) order: deterministic for a given membership, and the devices of one node stay adjacent.</summary>
    private void DealRanks()
    {
        int rank = 0;
        foreach (var (key, reg) in _registered.OrderBy(x => x.Key.Node, StringComparer.Ordinal).ThenBy(x => x.Key.LocalIndex))
        {
            _ranks[key] = rank;
            _trainers[rank] = reg.Trainer;
            _endpoints.Add(reg.DataEndpoint);
            rank++;
        }
        _log.Info("ranks: {0}", string.Join(", ", _ranks.OrderBy(x => x.Value).Select(x => $"{x.Value} = trainer {x.Key.LocalIndex} on {x.Key.Node}")));
    }

    /// <summary>Starts the current generation: every replica joins it and copies <paramref name="root"/> (or loads <paramref name="checkpointFile"/>).</summary>
    private void StartSynchronise(int root, string? checkpointFile)
    {
        _synced.Clear();
        _notArrived.Clear();
        _reportedFailure.Clear();
        Transition(Phase.Synchronising, _trainers.Keys);
        var peers = _endpoints.ToImmutableArray();
        foreach (var (rank, trainer) in _trainers) trainer.Tell(new Synchronise(_generation, rank, root, checkpointFile, peers));
    }

    private void OnSynchronised(Synchronised m)
    {
        if (!Accept(m.Generation, m.Rank, Phase.Synchronising)) return;
        _synced[m.Rank] = m;
        if (_awaiting.Count > 0) return;
        var checksums = _synced.Values.Select(s => s.Checksum).Distinct().ToArray();
        if (checksums.Length != 1 || _synced.Values.Any(s => s.CompletedSteps != _step))
        {
            // Never adopt the replicas' step count: a run that silently went back to an older state
            // would report steps twice and end "completed" with other parameters.
            string where = _ctx.ResumeFrom is { } resume && _step == resume.Step ? $" (checkpoint {resume.Directory})" : "";
            Fail($"replicas do not hold the run's step {_step} after synchronisation{where}: " + string.Join(", ", _synced.Values.OrderBy(s => s.Rank)
                .Select(s => $"rank {s.Rank} step {s.CompletedSteps} checksum {s.Checksum:x16}")));
            return;
        }
        _knownChecksum = (_step, checksums[0]);
        if (!_runClock.IsRunning) _runClock.Start();
        var next = _afterSynchronise ?? NextStep;
        _afterSynchronise = null;
        next();
    }

    // ---- Recovery: choose the source replica by evidence ---------------------------------------

    private void StartInspection()
    {
        _generation++;
        _inspected.Clear();
        Transition(Phase.Inspecting, _trainers.Keys);
        foreach (var (rank, trainer) in _trainers) trainer.Tell(new InspectReplica(_generation, rank));
    }

    private void OnReplicaInspected(ReplicaInspected m)
    {
        if (!Accept(m.Generation, m.Rank, Phase.Inspecting)) return;
        _inspected[m.Rank] = m;
        if (_awaiting.Count > 0) return;
        var latest = CheckpointStore.Latest(_ctx.Run);
        var plan = RecoverySource.Choose(_step, _knownChecksum is { } known && known.Step == _step ? known.Checksum : null,
            _inspected.Values.Select(r => new ReplicaHolding(r.Rank, r.HasState, r.CompletedSteps, r.Checksum)).ToArray(),
            initialStateIsValid: _step == 0 && _ctx.ResumeFrom is null,
            latest is null ? null : (latest.Step, latest.TrainerState));
        switch (plan)
        {
            case RecoveryPlan.FromReplica(var root):
                _log.Info("recovery: every replica copies rank {0} (it holds step {1})", root, _step);
                StartSynchronise(root, checkpointFile: null);
                break;
            case RecoveryPlan.FromCheckpoint(var file):
                _ctx.Observer.OnNotice($"no replica holds step {_step} any more; reloading it from {file}");
                StartSynchronise(_trainers.Keys.First(), file);
                break;
            case RecoveryPlan.Impossible(var reason):
                Fail($"cannot recover from the trainer restart: {reason} in {_ctx.Run.CheckpointsPath}");
                break;
        }
    }

    // ---- One step ------------------------------------------------------------------------------

    private void NextStep()
    {
        var s = _ctx.Settings;
        bool reachedStop = s.Train.StopAtStep > 0 && _step >= s.Train.StopAtStep && _step < s.Train.Steps;
        if (reachedStop) _stopReason ??= $"colm.train.stop-at-step = {s.Train.StopAtStep}";
        if (_step >= s.Train.Steps || _stopReason is not null)
        {
            Finish();
            return;
        }

        long step = _step + 1;
        _samplerAtStepStart = _sampler.State;
        _normalizerAtStepStart = _selector.ExportNormalizer();
        _pool = _sampler.Next(s.Selection.Pool);
        _stepSpan?.Dispose();
        _stepSpan = ColmTelemetry.Source.StartActivity(ColmTelemetry.StepSpan, ActivityKind.Internal, parentContext: default);
        _stepSpan?.SetTag("colm.step", step);
        _stepSpan?.SetTag("colm.generation", _generation);
        _phaseSeconds.Clear();
        _stepClock.Restart();

        if (s.Selection.SketchKind is { } kind)
        {
            // Small-source examples are kept whole when sources are balanced: nothing to compute for them.
            var toSketch = s.Selection.SketchesSmallSources
                ? _pool
                : _pool.Where(id => !_isSmallSource[_ctx.Data.TrainSourceIds[id]]).ToArray();
            var shares = WorkShares.Split(toSketch, WorldSize);
            _sketches.Clear();
            Transition(Phase.Sketching, _trainers.Keys);
            long probeSeed = s.Selection.ProbeSeed(s.Run.Seed, step);
            int r = 0;
            foreach (var (_, trainer) in _trainers)
                trainer.Tell(new PoolAssignment(_generation, step, [.. shares[r++]], kind, probeSeed, s.Selection.EffectiveProbes));
        }
        else
        {
            SelectAndTrain(step, new Dictionary<int, Sketches>());
        }
    }

    private void OnSketches(Sketches m)
    {
        if (!Accept(m.Generation, m.Rank, Phase.Sketching)) return;
        _sketches[m.Rank] = m;
        if (_awaiting.Count > 0) return;
        EndPhase(ColmInstruments.PhaseSketch);
        SelectAndTrain(_step + 1, _sketches);
    }

    private void SelectAndTrain(long step, IReadOnlyDictionary<int, Sketches> sketches)
    {
        var s = _ctx.Settings;
        var clock = Stopwatch.StartNew();
        using (ColmTelemetry.Source.StartActivity(ColmTelemetry.SelectSpan, ActivityKind.Internal, _stepSpan?.Context ?? default))
        {
            var pool = AssemblePool(sketches, step);
            _selection = _selector.Select(pool, s.Selection.TrainedPerStep, ProbeDirections.SeedForStep(s.Run.Seed ^ 0x5E1EC7, step));
        }
        _phaseSeconds[ColmInstruments.PhaseSelect] = clock.Elapsed.TotalSeconds;
        _ctx.Instruments.OnPhase(ColmInstruments.PhaseSelect, clock.Elapsed);
        if (_selection.DegenerateFeatures > 0) _ctx.Instruments.OnDegenerateFeatures(_selection.DegenerateFeatures);
        _ctx.Instruments.OnSmallSourcesCapped(_selection.SmallLeftOut);

        // Deal the coreset out round-robin in (source, id) order, so every trainer gets an even
        // share of each source (the reference gives one rank most of the kept examples).
        var order = Enumerable.Range(0, _selection.ExampleIds.Length)
            .OrderBy(i => _ctx.Data.TrainSourceIds[_selection.ExampleIds[i]])
            .ThenBy(i => _selection.ExampleIds[i]).ToArray();
        var ids = Enumerable.Range(0, WorldSize).Select(_ => new List<int>()).ToArray();
        var weights = Enumerable.Range(0, WorldSize).Select(_ => new List<float>()).ToArray();
        for (int j = 0; j < order.Length; j++)
        {
            ids[j % WorldSize].Add(_selection.ExampleIds[order[j]]);
            weights[j % WorldSize].Add(_selection.Weights[order[j]]);
        }
        double globalWeight = _selection.Weights.Sum(w => (double)w);
        bool checksum = step % s.Train.ChecksumEvery == 0 || step == s.Train.Steps;
        _done.Clear();
        Transition(Phase.Training, _trainers.Keys);
        int r = 0;
        foreach (var (_, trainer) in _trainers)
        {
            trainer.Tell(new TrainAssignment(_generation, step, [.. ids[r]], [.. weights[r]], globalWeight, checksum));
            r++;
        }
    }

    private PoolSketch AssemblePool(IReadOnlyDictionary<int, Sketches> sketches, long step)
    {
        var sel = _ctx.Settings.Selection;
        int probes = sel.SketchKind == SketchKind.ZerothOrder ? sel.EffectiveProbes : 0;
        int dim = _sketchWidth;
        var builder = new PoolSketchBuilder(_pool, probes, sel.SketchKind == SketchKind.Exact ? dim : 0);
        foreach (var sketch in sketches.Values) builder.Add(sketch.Ids, sketch.Losses, sketch.Coefficients, sketch.Features);
        return builder.Build(_pool.Select(id => _ctx.Data.TrainSourceIds[id]).ToArray(), sel.ProbeSeed(_ctx.Settings.Run.Seed, step), dim);
    }

    private void OnStepDone(StepDone m)
    {
        if (!Accept(m.Generation, m.Rank, Phase.Training)) return;
        _done[m.Rank] = m;
        if (_awaiting.Count > 0) return;
        EndPhase(ColmInstruments.PhaseTrain);
        var s = _ctx.Settings;
        long step = _step + 1;

        var sums = _done.Values.Where(d => d.Outcome.Checksum is not null).Select(d => (d.Rank, Sum: d.Outcome.Checksum!.Value)).ToArray();
        if (sums.Length > 0 && sums.Select(x => x.Sum).Distinct().Count() > 1)
        {
            Fail($"replica parameter checksums differ after step {step}: " +
                 string.Join(", ", sums.OrderBy(x => x.Rank).Select(x => $"rank {x.Rank} {x.Sum:x16}")) +
                 $"; the replicas have diverged, so the run stops. The last checkpoint in {_ctx.Run.CheckpointsPath} is intact");
            return;
        }
        if (sums.Length > 0) _knownChecksum = (step, sums[0].Sum);

        _step = step;
        var stepTime = _stepClock.Elapsed;
        int samples = _done.Values.Sum(d => d.Outcome.Examples);
        double loss = _done.Values.Sum(d => d.Outcome.WeightedLossSum) / Math.Max(1e-12, _selection!.Weights.Sum(w => (double)w));
        double allReduce = _done.Values.Max(d => d.Outcome.AllReduce.TotalSeconds);
        _phaseSeconds[ColmInstruments.PhaseAllReduce] = allReduce;
        _ctx.Instruments.OnPhase(ColmInstruments.PhaseAllReduce, TimeSpan.FromSeconds(allReduce));
        _ctx.Instruments.OnStepCompleted(step, loss, stepTime, samples);
        var perSource = new Dictionary<string, int>();
        for (int src = 0; src < _selection.SelectedPerSource.Length; src++)
        {
            if (_selection.SelectedPerSource[src] == 0) continue;
            perSource[_ctx.Data.SourceNames[src]] = _selection.SelectedPerSource[src];
            _ctx.Instruments.OnSelected(_ctx.Data.SourceNames[src], _selection.SelectedPerSource[src]);
        }
        _stepSpan?.SetTag("colm.loss", loss);
        _stepSpan?.Dispose();
        _stepSpan = null;

        double stepsThisProcess = _step - _runClockOffsetSteps;
        double perSecond = _runClock.Elapsed.TotalSeconds > 0 ? stepsThisProcess * s.Selection.TrainedPerStep / _runClock.Elapsed.TotalSeconds : 0;
        var report = new StepReport(step, s.Train.Steps, loss, s.Train.LearningRateAt(step - 1), samples, perSecond, stepTime,
            _runClock.Elapsed, new Dictionary<string, double>(_phaseSeconds), perSource);
        _ctx.Run.AppendMetrics(new
        {
            kind = "step",
            step,
            loss,
            lr = report.LearningRate,
            samples,
            samplesPerSecond = perSecond,
            elapsedSeconds = _runClock.Elapsed.TotalSeconds,
            stepSeconds = stepTime.TotalSeconds,
            phases = report.PhaseSeconds,
            selected = perSource,
            degenerateFeatures = _selection.DegenerateFeatures,
            smallLeftOut = _selection.SmallLeftOut,
            generation = _generation,
            // The slowest trainer's own compute, beside the phase times above (which add messaging and waiting).
            trainerSeconds = new
            {
                sketch = _sketches.Count == 0 ? 0 : _sketches.Values.Max(x => x.Elapsed.TotalSeconds),
                compute = _done.Values.Max(d => d.Outcome.Compute.TotalSeconds),
                optimizer = _done.Values.Max(d => d.Outcome.Optimizer.TotalSeconds),
            },
        });
        _ctx.Observer.OnStep(report);

        bool evalDue = s.Train.EvalEvery > 0 && step % s.Train.EvalEvery == 0 && step < s.Train.Steps;
        bool checkpointDue = s.Train.CheckpointEvery > 0 && step % s.Train.CheckpointEvery == 0 && step < s.Train.Steps;
        Action afterEval = checkpointDue ? () => Checkpoint(NextStep) : NextStep;
        if (evalDue) Evaluate(afterEval);
        else afterEval();
    }

    // ---- Evaluation ----------------------------------------------------------------------------

    private void Evaluate(Action then)
    {
        _afterEvaluation = then;
        _evals.Clear();
        var shares = WorkShares.Split(Enumerable.Range(0, _ctx.Data.Heldout.Count).ToArray(), WorldSize);
        Transition(Phase.Evaluating, _trainers.Keys);
        int r = 0;
        foreach (var (_, trainer) in _trainers) trainer.Tell(new EvalAssignment(_generation, _step, [.. shares[r++]]));
    }

    private void OnEvalDone(EvalDone m)
    {
        if (!Accept(m.Generation, m.Rank, Phase.Evaluating)) return;
        _evals[m.Rank] = m;
        if (_awaiting.Count > 0) return;
        EndPhase(ColmInstruments.PhaseEval);
        var scores = new Dictionary<string, (int N, int Correct, double Loss)>();
        foreach (var e in _evals.Values)
        {
            for (int j = 0; j < e.Ids.Length; j++)
            {
                string source = _ctx.Data.SourceNames[_ctx.Data.Heldout[e.Ids[j]].SourceId];
                var (n, correct, loss) = scores.GetValueOrDefault(source);
                scores[source] = (n + 1, correct + (e.Outcome.ExactMatch[j] ? 1 : 0), loss + e.Outcome.Losses[j]);
            }
        }
        var bySource = scores.OrderBy(x => x.Key, StringComparer.Ordinal).ToDictionary(
            x => x.Key, x => new SourceScore(x.Value.N, (double)x.Value.Correct / x.Value.N, x.Value.Loss / x.Value.N));
        var report = ToReport(_step, bySource);
        foreach (var (source, score) in bySource) _ctx.Instruments.OnEvaluated(source, score.Accuracy, score.Loss);
        if (_baseline is null)
        {
            _baseline = bySource;
            _before = report;
        }
        _last = report;
        _ctx.Run.AppendMetrics(new
        {
            kind = "eval",
            step = _step,
            elapsedSeconds = _runClock.Elapsed.TotalSeconds,
            meanAccuracy = report.MeanAccuracy,
            meanLoss = report.MeanLoss,
            sources = bySource,
        });
        _ctx.Observer.OnEvaluation(report);
        var then = _afterEvaluation!;
        _afterEvaluation = null;
        then();
    }

    // ---- Checkpoints ---------------------------------------------------------------------------

    private void Checkpoint(Action then)
    {
        _afterEvaluation = then;
        _partialCheckpoint = _checkpoints.BeginPartial(_step);
        int root = _trainers.Keys.First();
        Transition(Phase.Checkpointing, [root]);
        _trainers[root].Tell(new SaveState(_generation, _step, _partialCheckpoint.TrainerState, _partialCheckpoint.Adapter));
    }

    private void OnStateSaved(StateSaved m)
    {
        if (!Accept(m.Generation, m.Rank, Phase.Checkpointing)) return;
        EndPhase(ColmInstruments.PhaseCheckpoint);
        var sampler = _sampler.State;
        var state = new CoordinatorCheckpoint(_step, sampler.Epoch, sampler.Position, _selector.ExportNormalizer().Step,
            _baseline ?? new Dictionary<string, SourceScore>(), _ctx.Settings.Selection.Method.ToString(),
            _ctx.Data.Train.Count, CheckpointDataFit.PerSource(_ctx.Data));
        var done = _checkpoints.Complete(_partialCheckpoint!, state, _selector.ExportNormalizer(), _ctx.ResolvedConfig);
        _ctx.Run.AppendMetrics(new { kind = "checkpoint", step = _step, path = Path.GetRelativePath(_ctx.Run.Path, done.Directory) });
        _ctx.Run.WriteStatus("running", null, _step);
        var then = _afterEvaluation!;
        _afterEvaluation = null;
        then();
    }

    // ---- Faults --------------------------------------------------------------------------------

    private void OnTrainerRestarted(TrainerRestarted m)
    {
        var key = new TrainerKey(m.Node, m.LocalIndex);
        if (_phase == Phase.Finished) return;
        if (_phase == Phase.WaitingForTrainers)
        {
            // Restarted before ranks were dealt out: the new incarnation stands in for the old.
            if (_registered.TryGetValue(key, out var before)) _registered[key] = before with { Trainer = m.Trainer };
            return;
        }
        if (!_ranks.TryGetValue(key, out int rank))
        {
            Fail($"trainer {m.LocalIndex} on {m.Node} restarted but was never part of this run");
            return;
        }
        string retry = _phase switch
        {
            Phase.Evaluating => $"the evaluation after step {_step}",
            Phase.Checkpointing => $"the checkpoint of step {_step}",
            _ => $"step {_step + 1}",
        };
        _log.Warning("trainer rank {0} restarted ({1}); resynchronising and retrying {2}", rank, m.Reason, retry);
        _ctx.Observer.OnNotice($"trainer rank {rank} restarted ({m.Reason}); resynchronising from a replica that holds step {_step} and retrying {retry}");
        _ctx.Instruments.OnTrainerRestarted(rank);
        _trainers[rank] = m.Trainer;
        _ctx.Run.AppendMetrics(new { kind = "restart", rank, step = _step + 1, reason = m.Reason });

        // Undo what the abandoned attempt changed on the coordinator, so the retry draws the
        // same pool and makes the same selection (the step is a pure function of state + seed).
        if (_phase is Phase.Sketching or Phase.Training)
        {
            _sampler.Restore(_samplerAtStepStart);
            if (_normalizerAtStepStart is not null) _selector.RestoreNormalizer(_normalizerAtStepStart);
            _afterSynchronise = NextStep;
        }
        // An interrupted evaluation or checkpoint is done again, then the run goes on as it would have.
        var then = _afterEvaluation ?? NextStep;
        if (_phase == Phase.Evaluating) _afterSynchronise = () => Evaluate(then);
        if (_phase == Phase.Checkpointing) _afterSynchronise = () => Checkpoint(then);
        _afterEvaluation = null;
        _stepSpan?.Dispose();
        _stepSpan = null;
        _awaiting.Remove(rank);
        Timers.Cancel(RestartGraceTimerKey);
        // Recovering drops every reply it gets; the resynchronisation starts the next generation.
        Transition(Phase.Recovering, _awaiting.ToArray());
        ResumeAfterRecoveryIfQuiet();
    }

    private void ResumeAfterRecoveryIfQuiet()
    {
        // Peers that were mid-assignment answer (usually StepFailed: their all-reduce was
        // aborted) before anyone starts the new generation's collectives.
        if (_phase == Phase.Recovering && _awaiting.Count == 0) StartInspection();
    }

    private void OnStepFailed(StepFailed m)
    {
        if (m.Fatal)
        {
            Fail($"trainer rank {m.Rank}: {m.Reason}", badInput: true);
            return;
        }
        if (_phase == Phase.Recovering)
        {
            _awaiting.Remove(m.Rank);
            ResumeAfterRecoveryIfQuiet();
            return;
        }
        if (m.Generation != _generation || !_awaiting.Remove(m.Rank)) return;
        _reportedFailure.Add(m.Rank);
        foreach (int missing in m.NotArrived)
            if (missing != m.Rank) _notArrived.Add(missing);
        // Usually a peer's all-reduce was aborted because another trainer crashed; that
        // trainer's TrainerRestarted may arrive after this (different senders, no ordering).
        // Give it a grace period; with no restart behind it the run cannot make progress.
        Timers.StartSingleTimer(RestartGraceTimerKey, new NoRestartFollowed(_generation, m.Rank, m.Step, m.Reason), _ctx.Settings.Cluster.RestartGrace);
    }

    private sealed record NoRestartFollowed(long Generation, int Rank, long Step, string Reason);

    private void OnNoRestartFollowed(NoRestartFollowed m)
    {
        if (m.Generation != _generation || _phase == Phase.Finished) return;
        if (_notArrived.Count > 0)
        {
            // Blame the rank its peers waited for, not the peer that noticed.
            Fail($"trainer rank(s) {string.Join(", ", _notArrived)} did not arrive at the collective of step {m.Step} within " +
                 $"{_ctx.Settings.Cluster.CollectiveTimeout.TotalSeconds:0}s (colm.cluster.collective-timeout): hung or too slow; " +
                 $"reported by rank(s) {string.Join(", ", _reportedFailure)}: {m.Reason}. The last checkpoint in {_ctx.Run.CheckpointsPath} is intact");
            return;
        }
        Fail($"trainer rank {m.Rank} failed at step {m.Step}: {m.Reason}");
    }

    private void OnTrainerTerminated(Terminated m)
    {
        var rank = _trainers.FirstOrDefault(x => x.Value.Equals(m.ActorRef));
        string who = rank.Value is null ? $"trainer {m.ActorRef.Path}" : $"trainer rank {rank.Key} ({m.ActorRef.Path})";
        string why = m.AddressTerminated ? "its node is gone" : "it failed repeatedly";
        Fail($"{who} stopped ({why}) during step {_step + 1}; the last checkpoint in {_ctx.Run.CheckpointsPath} is intact");
    }

    /// <summary>
    /// A node hosting trainers of this run is gone: the run cannot continue (membership is fixed
    /// for a run until elastic training exists), so it stops now rather than at a phase timeout.
    /// </summary>
    private void OnNodeLost(Address address, string what)
    {
        string node = address.ToString();
        var ranks = _ranks.Where(x => x.Key.Node == node).Select(x => x.Value).Order().ToArray();
        bool hostsTrainers = ranks.Length > 0 || _registered.Keys.Any(k => k.Node == node);
        if (!hostsTrainers || _phase == Phase.Finished) return;
        string which = ranks.Length > 0 ? $"trainer rank(s) {string.Join(", ", ranks)}" : "registered trainers";
        Fail($"node {node} hosting {which} {what} during step {_step + 1}; the run stops. " +
             $"The last checkpoint in {_ctx.Run.CheckpointsPath} is intact; resume with --resume {_ctx.Run.Path}");
    }

    private sealed record PhaseTimedOut(long Generation, Phase Phase, long Step);

    /// <summary>A trainer's identity before it has a rank: its node and its device there.</summary>
    private readonly record struct TrainerKey(string Node, int LocalIndex);

    private void OnPhaseTimedOut(PhaseTimedOut m)
    {
        if (m.Phase == Phase.WaitingForTrainers && _phase == Phase.WaitingForTrainers)
        {
            Fail($"only {_registered.Count} of {WorldSize} trainers registered within {_ctx.Settings.Cluster.PhaseTimeout.TotalSeconds:0}s");
            return;
        }
        if (m.Generation != _generation || m.Phase != _phase || m.Step != _step || _awaiting.Count == 0) return;
        Fail($"no answer in {_ctx.Settings.Cluster.PhaseTimeout.TotalSeconds:0}s from trainer rank(s) {string.Join(", ", _awaiting.Order())} " +
             $"during {_phase} of step {_step + 1}; the last checkpoint in {_ctx.Run.CheckpointsPath} is intact");
    }

    // ---- Ending --------------------------------------------------------------------------------

    private void Finish()
    {
        if (_last is null || _last.Step != _step)
        {
            Evaluate(then: Finish);
            return;
        }
        if (CheckpointStore.Latest(_ctx.Run)?.Step != _step)
        {
            Checkpoint(then: Finish);
            return;
        }
        string state = _stopReason is null ? "completed" : "stopped";
        if (_stopReason is not null) _ctx.Observer.OnNotice($"stopped after step {_step}: {_stopReason}; resume with --resume {_ctx.Run.Path}");
        _ctx.Run.PublishAdapter(CheckpointStore.Latest(_ctx.Run)!.Adapter);
        _ctx.Run.WriteReport(RunReport.Markdown(_ctx, _before, _last, _step, state));
        _ctx.Run.WriteStatus(state, null, _step);
        Transition(Phase.Finished, []);
        _ctx.Completion.TrySetResult(new RunResult(state, _step, _ctx.Run.Path, _before, _last, null));
    }

    /// <summary>Ends the run as failed; <paramref name="badInput"/> when the cause is the user's data, settings, checkpoint or storage (exit 2).</summary>
    private void Fail(string error, bool badInput = false)
    {
        if (_phase == Phase.Finished) return;
        _log.Error("run failed: {0}", error);
        _stepSpan?.SetStatus(ActivityStatusCode.Error, error);
        _stepSpan?.Dispose();
        _stepSpan = null;
        try
        {
            _ctx.Run.WriteStatus("failed", error, _step);
        }
        catch (IOException)
        {
            // The failure itself is what matters; the status file is best effort.
        }
        Transition(Phase.Finished, []);
        _ctx.Completion.TrySetResult(new RunResult("failed", _step, _ctx.Run.Path, _before, _last, error, badInput));
    }

    /// <summary>
    /// Anything a handler throws ends the run with its cause. Left to Akka, the singleton manager
    /// would restart the coordinator, which would then wait for trainers that registered long ago
    /// and fail after the phase timeout with a message about registration (a full disk read
    /// "only 0 of 2 trainers registered within 300s").
    /// </summary>
    protected override bool AroundReceive(Receive receive, object message)
    {
        try
        {
            return base.AroundReceive(receive, message);
        }
        catch (Exception e)
        {
            var (action, described) = FailurePolicy.Classify(e);
            bool badInput = action == FailureAction.StopBadInput;
            Fail(badInput ? described : $"the coordinator failed handling {message.GetType().Name}: {e.GetType().Name}: {e.Message}", badInput);
            return true;
        }
    }

    // ---- Helpers -------------------------------------------------------------------------------

    /// <summary>True when a reply belongs to the current attempt; stale ones are dropped.</summary>
    private bool Accept(long generation, int rank, Phase expected)
    {
        if (_phase == Phase.Recovering)
        {
            _awaiting.Remove(rank);
            ResumeAfterRecoveryIfQuiet();
            return false;
        }
        if (generation != _generation || _phase != expected || !_awaiting.Remove(rank))
        {
            _log.Debug("dropped a stale reply from rank {0} (generation {1}, phase {2})", rank, generation, expected);
            return false;
        }
        return true;
    }

    private void Transition(Phase next, IEnumerable<int> awaiting)
    {
        if (_phase != next) _log.Info("[{0} -> {1}] step {2} generation {3}", _phase, next, _step + 1, _generation);
        _phase = next;
        _awaiting.Clear();
        foreach (var r in awaiting) _awaiting.Add(r);
        _phaseSpan?.Dispose();
        _phaseClock.Restart();
        _phaseSpan = next switch
        {
            Phase.Sketching => StartPhaseSpan(ColmTelemetry.SketchSpan),
            Phase.Training => StartPhaseSpan(ColmTelemetry.TrainSpan),
            Phase.Evaluating => StartPhaseSpan(ColmTelemetry.EvalSpan),
            Phase.Checkpointing => StartPhaseSpan(ColmTelemetry.CheckpointSpan),
            Phase.Synchronising or Phase.Inspecting => StartPhaseSpan(ColmTelemetry.ResyncSpan),
            _ => null,
        };
        if (_awaiting.Count > 0)
            Timers.StartSingleTimer(PhaseTimerKey, new PhaseTimedOut(_generation, next, _step), _ctx.Settings.Cluster.PhaseTimeout);
        else
            Timers.Cancel(PhaseTimerKey);
    }

    private Activity? StartPhaseSpan(string name) =>
        ColmTelemetry.Source.StartActivity(name, ActivityKind.Internal, _stepSpan?.Context ?? default);

    private void EndPhase(string phase)
    {
        // Timed by our own clock: spans exist only while a telemetry exporter listens.
        var elapsed = _phaseClock.Elapsed;
        _phaseSpan?.Dispose();
        _phaseSpan = null;
        _phaseSeconds[phase] = elapsed.TotalSeconds;
        _ctx.Instruments.OnPhase(phase, elapsed);
    }

    /// <summary>
    /// The means are over sources the run trains on; a held-out-only source (a task no training
    /// example shows, like the built-in mixture's ood.compose) is reported on its own, so a task
    /// nobody trains for does not swamp the comparison of what training did.
    /// </summary>
    private EvalReport ToReport(long step, IReadOnlyDictionary<string, SourceScore> sources)
    {
        var trained = sources.Where(s => !_ctx.Data.HeldoutOnlySources.Contains(s.Key)).Select(s => s.Value).ToArray();
        var averaged = trained.Length > 0 ? trained : sources.Values.ToArray();
        return new(step, sources, averaged.Length == 0 ? 0 : averaged.Average(x => x.Accuracy), averaged.Length == 0 ? 0 : averaged.Average(x => x.Loss));
    }
}
