using System.Diagnostics;
using System.Runtime.InteropServices;
using CoLM.Collectives;
using CoLM.Data;
using CoLM.Determinism;
using CoLM.Model;
using CoLM.Selection;
using CoLM.Training.Settings;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CoLM.Training;

/// <summary>
/// One device's copy of the model and optimizer, with no Akka in it: a trainer actor is a thin
/// shell of message handlers around this class. Replicas stay identical because every one
/// applies the same all-reduced gradient with the same optimizer arithmetic.
/// Tensor lifetime: every public method runs in its own dispose scope; nothing tensor-valued
/// escapes except the model and optimizer state owned by this object.
/// </summary>
public sealed class TrainerReplica : IDisposable
{
    private readonly ColmSettings _settings;
    private readonly DataMixture _data;
    private ICollective? _collective; // null until the replica's first generation
    private readonly FaultInjector _faults;
    private readonly Device _device;
    private readonly CausalDecoder _model;
    private readonly AdamW _optimizer;
    private readonly Parameter[] _trainable;
    private readonly string[] _trainableNames;
    // Flat gradient staging for the all-reduce; reused every step.
    private readonly float[] _gradients;

    public TrainerReplica(ColmSettings settings, DataMixture data, int rank, ICollective collective, FaultInjector faults)
        : this(settings, data, faults)
    {
        Rank = rank;
        _collective = collective;
    }

    /// <summary>
    /// A replica built before it has a rank or a generation (<see cref="JoinGeneration"/> gives it
    /// both): a trainer builds its model while it waits to be admitted, so the peers it joins do not
    /// wait for the build (half a second for the tiny model, far more for a real one).
    /// </summary>
    public TrainerReplica(ColmSettings settings, DataMixture data, FaultInjector faults)
    {
        _settings = settings;
        _data = data;
        Rank = -1;
        _faults = faults;
        _device = CPU;
        _model = CreateModel(settings, data.Tokenizer);
        var trainable = _model.TrainableParameters();
        _trainable = trainable.Select(p => p.Parameter).ToArray();
        _trainableNames = trainable.Select(p => p.Name).ToArray();
        _gradients = new float[_trainable.Sum(p => (int)p.numel())];
        _optimizer = optim.AdamW(_trainable, lr: settings.Train.LearningRate, beta1: 0.9, beta2: 0.999,
            eps: 1e-8, weight_decay: settings.Train.WeightDecay);
    }

    private ICollective Collective => _collective ?? throw new InvalidOperationException("the replica has not joined a generation yet");

    /// <summary>This replica's rank in the current generation (-1 before the first); a membership change may deal it another.</summary>
    public int Rank { get; private set; }

    /// <summary>
    /// Continues in a new generation with <paramref name="collective"/> (its rank and world size may
    /// differ from the last one after nodes were lost or joined); the model and optimizer state stay.
    /// </summary>
    public void JoinGeneration(ICollective collective)
    {
        _collective = collective;
        Rank = collective.Rank;
        Progress.Reset();
    }

    /// <summary>This generation's collectives, entered and completed (read by the trainer's heartbeat).</summary>
    public CollectiveProgress Progress { get; } = new();

    /// <summary>
    /// A Hugging Face model folder when configured (Llama family or Phi-2), else the built-in decoder from the seed;
    /// frozen weights in the configured compute dtype, LoRA weights in fp32.
    /// </summary>
    public static CausalDecoder CreateModel(ColmSettings settings, ITokenizer tokenizer)
    {
        var dtype = ComputeDtype(settings);
        CausalDecoder model;
        if (settings.Model.IsHuggingFace)
        {
            model = Model.Hf.HfModelLoader.LoadDecoder(settings.Model.Folder, settings.Model.Lora, dtype, settings.Model.InitSeed);
        }
        else
        {
            model = new LlamaDecoder(settings.Model.ToDecoderConfig(tokenizer.VocabSize), settings.Model.Lora, settings.Model.InitSeed);
            model.CastBaseWeights(dtype);
        }
        try
        {
            // Continue from an earlier adapter: every replica starts from the same LoRA weights.
            if (settings.Model.Adapter.Length > 0) Model.Peft.PeftAdapter.Import(model, settings.Model.Adapter);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Width of the sketched parameter (last layer's v_proj LoRA-B): output width x rank.</summary>
    public static int SketchWidth(ColmSettings settings) =>
        (settings.Model.IsHuggingFace ? Model.Hf.HfModelLoader.ValueWidth(settings.Model.Folder) : settings.Model.Dim) * settings.Model.Lora.Rank;

    /// <summary>The compute dtype colm.model.dtype resolves to (see <see cref="ModelSettings.ResolveDtype"/>).</summary>
    public static ScalarType ComputeDtype(ColmSettings settings) =>
        settings.Model.ResolveDtype(settings.Model.IsHuggingFace ? Model.Hf.HfModelLoader.StoredDtype(settings.Model.Folder) : null) switch
        {
            "bfloat16" => ScalarType.BFloat16,
            "float16" => ScalarType.Float16,
            _ => ScalarType.Float32,
        };

    /// <summary>The last optimizer step this replica completed (0 before training).</summary>
    public long CompletedSteps { get; private set; }

    public int TrainableElements => _gradients.Length;

    public int SketchDimension => (int)_model.SketchParameter.numel();

    /// <summary>
    /// What the coordinator's selection method needs about these pool examples: always the
    /// per-example loss; zeroth-order coefficients (K scalars each, COLM.md step 4) or the exact
    /// last-layer gradient feature, by <paramref name="kind"/>.
    /// </summary>
    public SketchOutcome Sketch(IReadOnlyList<int> trainIds, SketchKind kind, long probeSeed, int probes)
    {
        var clock = Stopwatch.StartNew();
        if (trainIds.Count == 0) return new SketchOutcome([], [], [], clock.Elapsed);
        using var scope = NewDisposeScope();
        using var batch = Collate.Build(Rows(_data.Train, trainIds), _data.Tokenizer.PadId, _device);
        switch (kind)
        {
            case SketchKind.ZerothOrder:
                var result = ZerothOrderSketch.Compute(_model, batch, probeSeed, probes, _settings.Selection.Epsilon);
                return new SketchOutcome(result.Losses, result.Coefficients, [], clock.Elapsed);
            case SketchKind.Exact:
                var features = ExactSketchGradient.Compute(_model, batch);
                return new SketchOutcome(Losses(batch), [], features, clock.Elapsed);
            default:
                return new SketchOutcome(Losses(batch), [], [], clock.Elapsed);
        }
    }

    private float[] Losses(TokenBatch batch)
    {
        bool wasTraining = _model.training;
        _model.eval();
        try
        {
            using var _ = no_grad();
            return TokenLoss.PerExample(_model.forward(batch.Inputs), batch.Targets, batch.Mask).data<float>().ToArray();
        }
        finally
        {
            _model.train(wasTraining);
        }
    }

    /// <summary>
    /// One optimizer step on this replica's share of the coreset. The loss is scaled by the
    /// global weight total, so the all-reduced SUM of gradients is the gradient of the weighted
    /// mean loss over the whole coreset.
    /// </summary>
    public TrainOutcome Train(long step, IReadOnlyList<int> trainIds, IReadOnlyList<float> weights, double globalWeight, bool checksum)
    {
        using var scope = NewDisposeScope();
        var clock = Stopwatch.StartNew();
        // Dropout masks are a function of (seed, step, rank): a resumed run replays them exactly.
        _model.SeedDropout(RandomStreams.Dropout(_settings.Run.Seed, step, Rank));
        _model.train();
        _optimizer.zero_grad();
        double weightedLoss = 0;
        int tokens = 0;
        if (trainIds.Count > 0)
        {
            using var batch = Collate.Build(Rows(_data.Train, trainIds), _data.Tokenizer.PadId, _device);
            tokens = (int)batch.Mask.sum().item<float>();
            var perExample = TokenLoss.PerExample(_model.forward(batch.Inputs), batch.Targets, batch.Mask);
            var w = tensor(weights.ToArray(), device: _device);
            var weighted = (perExample * w).sum();
            (weighted / globalWeight).backward();
            weightedLoss = weighted.item<float>();
        }
        else
        {
            // A replica with no examples this step still contributes (zero) gradients to the all-reduce.
            _trainable.Select(p => p.sum()).Aggregate((a, b) => a + b).mul(Model.HeldScalars.Zero).backward();
        }
        if (_faults.ShouldCrash(step, Rank)) throw new InjectedFaultException(step, Rank);
        _faults.MaybeHang(step, Rank);
        var compute = clock.Elapsed;

        // Synchronisation point: every replica blocks here until all have contributed.
        clock.Restart();
        CopyGradients(toBuffer: true);
        Progress.Around(() => Collective.AllReduceSum(_gradients));
        CopyGradients(toBuffer: false);
        var allReduce = clock.Elapsed;

        clock.Restart();
        double gradNorm = nn.utils.clip_grad_norm_(_trainable, _settings.Train.GradClip);
        foreach (var group in _optimizer.ParamGroups) group.LearningRate = _settings.Train.LearningRateAt(step - 1);
        _optimizer.step();
        CompletedSteps = step;
        if (_faults.ShouldDiverge(step, Rank))
            using (no_grad()) _trainable[0].add_(1e-3f);
        var optimizerTime = clock.Elapsed;

        return new TrainOutcome(weightedLoss, trainIds.Count, compute, allReduce, optimizerTime, checksum ? Checksum() : null,
            tokens, gradNorm, Telemetry.PeakMemory.PeakBytes());
    }

    /// <summary>
    /// The gradient of the weighted mean loss over these examples, without a step: the whole
    /// trainable vector (in the all-reduce layout) and the sketch parameter's part of it (the last
    /// layer's v_proj LoRA-B). Dropout is off, so the same examples always give the same gradient;
    /// the optimizer's state is untouched. For `colm bench matching`.
    /// </summary>
    public (float[] All, float[] Sketch) GradientOf(IReadOnlyList<int> trainIds, IReadOnlyList<float> weights) =>
        GradientOf(_data.Train, trainIds, weights);

    /// <summary>The gradient of the weighted mean held-out loss over the given held-out examples (as <see cref="GradientOf(IReadOnlyList{int}, IReadOnlyList{float})"/>).</summary>
    public (float[] All, float[] Sketch) HeldoutGradientOf(IReadOnlyList<int> heldoutIds, IReadOnlyList<float> weights) =>
        GradientOf(_data.Heldout, heldoutIds, weights);

    private (float[] All, float[] Sketch) GradientOf(IReadOnlyList<TokenizedExample> examples, IReadOnlyList<int> ids, IReadOnlyList<float> weights)
    {
        ArgumentOutOfRangeException.ThrowIfZero(ids.Count);
        using var scope = NewDisposeScope();
        bool wasTraining = _model.training;
        _model.eval();
        try
        {
            _optimizer.zero_grad();
            // In chunks whose gradients add up, so a held-out set of thousands fits in memory.
            const int Chunk = 128;
            double total = weights.Sum(x => (double)x);
            for (int start = 0; start < ids.Count; start += Chunk)
            {
                using var chunkScope = NewDisposeScope();
                int n = Math.Min(Chunk, ids.Count - start);
                using var batch = Collate.Build(Rows(examples, ids.Skip(start).Take(n).ToArray()), _data.Tokenizer.PadId, _device);
                var perExample = TokenLoss.PerExample(_model.forward(batch.Inputs), batch.Targets, batch.Mask);
                var w = tensor(weights.Skip(start).Take(n).Select(x => (float)(x / total)).ToArray(), device: _device);
                (perExample * w).sum().backward();
            }
            CopyGradients(toBuffer: true);
            var all = (float[])_gradients.Clone();
            var sketch = _model.SketchParameter.grad!.to(ScalarType.Float32).cpu().data<float>().ToArray();
            _optimizer.zero_grad();
            return (all, sketch);
        }
        finally
        {
            _model.train(wasTraining);
        }
    }

    /// <summary>
    /// Held-out loss and exact match by teacher forcing: the argmax at every target position
    /// equals the target exactly when greedy decoding would reproduce the whole answer (and its
    /// EOS), because each greedy step then sees the same prefix. One batched forward, no loop.
    /// </summary>
    public EvalOutcome Evaluate(IReadOnlyList<int> heldoutIds)
    {
        // Small evaluation batches: at 64 rows libtorch's CPU kernels took ~150 MB of extra
        // scratch memory here, which would dominate the peak memory of a small model's run.
        const int chunk = 16;
        var losses = new float[heldoutIds.Count];
        var exact = new bool[heldoutIds.Count];
        bool wasTraining = _model.training;
        _model.eval();
        try
        {
            for (int start = 0; start < heldoutIds.Count; start += chunk)
            {
                using var scope = NewDisposeScope();
                using var _ = no_grad();
                var ids = heldoutIds.Skip(start).Take(chunk).ToArray();
                using var batch = Collate.Build(Rows(_data.Heldout, ids), _data.Tokenizer.PadId, _device);
                var logits = _model.forward(batch.Inputs);
                var perExample = TokenLoss.PerExample(logits, batch.Targets, batch.Mask).data<float>().ToArray();
                var wrong = (logits.argmax(-1).ne(batch.Targets).to_type(ScalarType.Float32) * batch.Mask).sum(1).data<float>().ToArray();
                for (int i = 0; i < ids.Length; i++)
                {
                    losses[start + i] = perExample[i];
                    exact[start + i] = wrong[i] == 0;
                }
            }
        }
        finally
        {
            _model.train(wasTraining);
        }
        return new EvalOutcome(losses, exact);
    }

    /// <summary>FNV-1a over the raw bytes of every trainable tensor: equal iff replicas are bit-identical.</summary>
    public ulong Checksum()
    {
        var hash = new StableHash();
        foreach (var p in _trainable) hash.Add(p.bytes);
        return hash.Value;
    }

    public byte[] ExportState() => ReplicaState.Write(this);

    /// <summary>The LoRA weights as a Hugging Face PEFT adapter folder (loadable by PEFT onto the base model).</summary>
    /// <summary>
    /// A copy of the LoRA weights as they are now, for writing the adapter off the replica's
    /// thread while training goes on (a background checkpoint). Dispose it after writing.
    /// </summary>
    public AdapterSnapshot SnapshotAdapter()
    {
        using var _ = no_grad();
        var copies = _model.TrainableParameters().Select(p => (p.Name, p.Parameter.detach().clone())).ToArray();
        return new AdapterSnapshot(_model.Lora, copies, _settings.Model.IsHuggingFace ? System.IO.Path.GetFullPath(_settings.Model.Folder) : null);
    }

    public void ExportAdapter(string directory) =>
        Model.Peft.PeftAdapter.Export(_model, directory, _settings.Model.IsHuggingFace ? System.IO.Path.GetFullPath(_settings.Model.Folder) : null);

    public void ImportState(byte[] state, string origin) => ReplicaState.Read(this, state, origin);

    /// <summary>Makes every replica equal to <paramref name="root"/>'s, through the data plane.</summary>
    public void SynchroniseFrom(int root)
    {
        byte[] mine = Rank == root ? ExportState() : [];
        var length = BitConverter.GetBytes((long)mine.Length);
        Progress.Around(() => Collective.Broadcast(length, root));
        var payload = Rank == root ? mine : new byte[BitConverter.ToInt64(length)];
        Progress.Around(() => Collective.Broadcast(payload, root));
        if (Rank != root) ImportState(payload, $"trainer rank {root}");
    }

    internal IReadOnlyList<(string Name, Parameter Parameter)> Trainable =>
        _trainableNames.Zip(_trainable, (n, p) => (n, p)).ToArray();

    internal AdamW Optimizer => _optimizer;

    internal void SetCompletedSteps(long step) => CompletedSteps = step;

    private void CopyGradients(bool toBuffer)
    {
        int offset = 0;
        foreach (var p in _trainable)
        {
            int n = (int)p.numel();
            var grad = MemoryMarshal.Cast<byte, float>(p.grad!.bytes);
            var slice = _gradients.AsSpan(offset, n);
            if (toBuffer) grad.CopyTo(slice);
            else slice.CopyTo(grad);
            offset += n;
        }
    }

    private static IReadOnlyList<(int[] Tokens, int PromptLength)> Rows(IReadOnlyList<TokenizedExample> split, IReadOnlyList<int> ids) =>
        ids.Select(id => (split[id].Tokens, split[id].PromptLength)).ToArray();

    public void Dispose()
    {
        _optimizer.Dispose();
        _model.Dispose();
    }
}
