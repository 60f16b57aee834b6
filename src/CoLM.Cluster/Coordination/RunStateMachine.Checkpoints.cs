using CoLM.Cluster.Actors;
using CoLM.Cluster.Runs;
using CoLM.Data;
using CoLM.Selection;
using CoLM.Telemetry;

namespace CoLM.Cluster.Coordination;

/// <summary>
/// Checkpoints: rank 0 writes its replica state (replicas are identical), the coordinator adds its
/// own part and seals the folder. Periodic checkpoints pause the run only for rank 0's in-memory
/// copy; the one a run ends with is written before the end.
/// </summary>
public sealed partial class RunStateMachine
{
    /// <summary>
    /// A checkpoint of the committed step. Periodic ones are taken in the background: rank 0 copies
    /// its state in memory and the run goes on while the copy is written; the last one (the run's
    /// result, or a stop) is written before the run ends.
    /// </summary>
    private void DoCheckpoint()
    {
        // A run that is ending (last step, or a stop) writes its checkpoint before it ends.
        bool background = State.Step < _s.Train.Steps && State.StopReason is null;
        if (State.PendingCheckpoint == State.Step)
        {
            // Its files are being written already: wait for them rather than write the same folder twice.
            Transition(RunPhase.Checkpointing, [0]);
            return;
        }
        var partial = CheckpointStore.PartialAt(_def.CheckpointsPath, State.Step);
        Emit(new PrepareCheckpoint(partial));
        // Replicas are identical, so one writes the model state; rank 0 is as good as any.
        Transition(RunPhase.Checkpointing, [0]);
        Send(0, new SaveState(State.Generation, State.Step, partial.TrainerState, partial.Adapter, background));
    }

    private CoordinatorCheckpoint CoordinatorPart(NormalizerState normalizer) =>
        new(State.Step, State.Sampler.Epoch, State.Sampler.Position, normalizer.Step,
            State.Before?.Sources ?? new Dictionary<string, SourceScore>(), _s.Selection.Method.ToString(),
            _def.Data.Train.Count, CheckpointDataFit.PerSource(_def.Data));

    private void OnStateCopied(StateCopied m)
    {
        if (!Accept(m.Generation, m.Rank, RunPhase.Checkpointing)) return;
        EndPhase(ColmInstruments.PhaseCheckpoint);
        var normalizer = State.Normalizer ?? _planner.NewSelector().ExportNormalizer();
        Emit(new WriteCheckpointPart(CheckpointStore.PartialAt(_def.CheckpointsPath, State.Step), CoordinatorPart(normalizer), normalizer));
        State = State with { PendingCheckpoint = State.Step, Current = null };
        RunAgenda();
    }

    private void OnStateSaved(StateSaved m)
    {
        bool awaited = State.Phase == RunPhase.Checkpointing && State.Awaiting.Contains(m.Rank) && m.Step == State.Step;
        if (!awaited && State.PendingCheckpoint == m.Step)
        {
            // A background checkpoint's files are on disk while the run went on.
            Emit(new SealCheckpoint(CheckpointStore.PartialAt(_def.CheckpointsPath, m.Step)));
            return;
        }
        if (!Accept(m.Generation, m.Rank, RunPhase.Checkpointing)) return;
        EndPhase(ColmInstruments.PhaseCheckpoint);
        var normalizer = State.Normalizer ?? _planner.NewSelector().ExportNormalizer();
        Emit(new CompleteCheckpoint(CheckpointStore.PartialAt(_def.CheckpointsPath, State.Step), CoordinatorPart(normalizer), normalizer));
    }

    private void OnCheckpointWritten(CheckpointWritten m)
    {
        long step = m.Checkpoint.Step;
        if (State.PendingCheckpoint == step) State = State with { PendingCheckpoint = null };
        if (State.Phase == RunPhase.Checkpointing && State.Current == Duty.Checkpoint && step == State.Step)
        {
            State = State with { LastCheckpoint = m.Checkpoint, Current = null };
            Emit(new CheckpointTaken(step, m.Checkpoint));
            RunAgenda();
            return;
        }
        if (State.LastCheckpoint is null || State.LastCheckpoint.Step < step)
        {
            State = State with { LastCheckpoint = m.Checkpoint };
            Emit(new CheckpointTaken(step, m.Checkpoint));
        }
    }
}
