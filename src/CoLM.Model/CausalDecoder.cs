using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CoLM.Model;

/// <summary>Head layout of an attention layer: Heads query heads and KvHeads key/value heads of HeadDim each.</summary>
internal readonly record struct AttentionShape(long Heads, long KvHeads, long HeadDim)
{
    /// <summary>Width of the heads' concatenated mix, Heads x HeadDim.</summary>
    public long MixWidth => Heads * HeadDim;
}

/// <summary>
/// What training, the sketches, PEFT adapters and generation need from a decoder-only language model with LoRA
/// adapters, whatever its architecture (<see cref="LlamaDecoder"/>, <see cref="Phi.PhiDecoder"/>): a trunk
/// (embedding + layers 0..n-2) and a head (last layer + final norm + lm_head) so the sketches can cache the
/// trunk; the last layer's v_proj LoRA B (the CoLM feature); the head split once more at the last attention's
/// head mix for the fast zeroth-order sketch; an incremental forward with a KV cache for generation.
/// Those are implemented once here over the parts an architecture supplies (embedding, <see cref="IDecoderLayer"/>s,
/// final norm with lm_head, rotary table). Tensor lifetime as in LlamaDecoder.cs. Only this assembly can add
/// architectures (the split points are internal).
/// </summary>
public abstract class CausalDecoder : nn.Module<Tensor, Tensor>
{
    private protected CausalDecoder(string name) : base(name)
    {
    }

    public abstract LoraSettings Lora { get; }

    public abstract int VocabSize { get; }

    /// <summary>The longest sequence the model takes (its rotary table, or max_position_embeddings).</summary>
    public abstract int MaxSeqLen { get; }

    /// <summary>Seeds this model's LoRA dropout masks (independent of libtorch's global generator).</summary>
    public void SeedDropout(long seed) => Dropout.Seed(seed);

    /// <summary>The last layer's v_proj LoRA B, shape (KvDim, Rank): the parameter the CoLM gradient feature is taken on.</summary>
    public Parameter SketchParameter => SketchProjection.LoraB!;

    /// <summary>The LoRA scale alpha / r of <see cref="SketchParameter"/>'s adapter.</summary>
    public double SketchScale => SketchProjection.Scale;

    internal LoraLinear SketchProjection
    {
        get
        {
            var projection = LastValueProjection;
            if (projection.LoraB is null)
                throw new InvalidOperationException(
                    "The gradient sketch needs a LoRA adapter on v_proj; add \"v_proj\" to the LoRA targets.");
            return projection;
        }
    }

    /// <summary>The last layer's v_proj, adapted or not.</summary>
    internal LoraLinear LastValueProjection => Layers[^1].ValueProjection;

    /// <summary>The head layout of the last layer's attention, which every layer shares.</summary>
    internal abstract AttentionShape LastAttentionShape { get; }

    /// <summary>The model's layers in order: the blocks of its registered "layers" ModuleList, which is no IReadOnlyList.</summary>
    private protected abstract IReadOnlyList<IDecoderLayer> Layers { get; }

    /// <summary>The rotary table, at least <see cref="MaxSeqLen"/> positions long. Disposed with the model.</summary>
    private protected abstract RotaryTable Rotary { get; }

    /// <summary>The generator of the model's LoRA dropout masks. Disposed with the model.</summary>
    private protected abstract DropoutSource Dropout { get; }

    /// <summary>Token embedding: (B, T) int64 -> (B, T, D). Runs in the caller's scope.</summary>
    private protected abstract Tensor Embed(Tensor tokens);

    /// <summary>Final norm and lm_head: (..., D) -> (..., V) logits. Runs in the caller's scope.</summary>
    private protected abstract Tensor Logits(Tensor hidden);

    /// <summary>(B, T) int64 tokens -> (B, T, V) logits.</summary>
    public override Tensor forward(Tensor tokens)
    {
        using var scope = NewDisposeScope();
        return ForwardHead(ForwardTrunk(tokens)).MoveToOuterDisposeScope();
    }

    /// <summary>Embedding and layers 0..n-2: (B, T) int64 -> (B, T, D). Run it under no_grad to cache it.</summary>
    public Tensor ForwardTrunk(Tensor tokens)
    {
        if (tokens.ndim != 2) throw new ArgumentException($"tokens must be (B, T), got shape [{string.Join(", ", tokens.shape)}].");
        using var scope = NewDisposeScope();
        var (cos, sin) = RotaryFor(tokens.shape[1], tokens.device);
        var h = Embed(tokens);
        for (int i = 0; i < Layers.Count - 1; i++) h = Layers[i].Forward(h, cos, sin, valueTap: null);
        return h.MoveToOuterDisposeScope();
    }

    /// <summary>Last layer, final norm and lm_head: (B, T, D) -> (B, T, V) logits.</summary>
    public Tensor ForwardHead(Tensor trunkHidden)
    {
        using var scope = NewDisposeScope();
        return ForwardHead(trunkHidden, valueTap: null).MoveToOuterDisposeScope();
    }

    /// <summary>The head, recording the last layer's v_proj LoRA input and output in <paramref name="valueTap"/>; runs in the caller's scope.</summary>
    internal Tensor ForwardHead(Tensor trunkHidden, LoraTap? valueTap)
    {
        if (trunkHidden.ndim != 3) throw new ArgumentException($"trunk hidden must be (B, T, D), got shape [{string.Join(", ", trunkHidden.shape)}].");
        var (cos, sin) = RotaryFor(trunkHidden.shape[1], trunkHidden.device);
        return Logits(Layers[^1].Forward(trunkHidden, cos, sin, valueTap));
    }

    /// <summary>
    /// The last layer's attention on the cached trunk output (B, T, D), split for the zeroth-order sketch (see
    /// <see cref="CausalAttention.MixValuesAndLoraHidden"/>): the heads' mix of the values P V0 as (B, T, H x hd) and of
    /// v_proj's LoRA hidden P u as (B, T, H, r). Eval mode only (no dropout); runs in the caller's scope.
    /// </summary>
    internal (Tensor MixedValues, Tensor MixedLoraHidden) MixLastAttention(Tensor trunkHidden)
    {
        var (cos, sin) = RotaryFor(trunkHidden.shape[1], trunkHidden.device);
        return Layers[^1].MixAttention(trunkHidden, cos, sin);
    }

    /// <summary>
    /// The rest of the head after the last attention's mix, position by position: residual (..., D) is the trunk
    /// output, mixed (..., H x hd) the mix at the same positions (leading dims broadcast, so one residual row can serve
    /// several mixes of it). Logits (..., V); caller's scope.
    /// </summary>
    internal Tensor ForwardAfterLastMix(Tensor residual, Tensor mixed) => Logits(Layers[^1].ForwardAfterMix(residual, mixed));

    /// <summary>
    /// An empty KV cache for <see cref="ForwardWithCache"/>: per layer, keys and values (batch, KvHeads, capacity, HeadDim)
    /// in the model's compute dtype on <paramref name="device"/>. The caller disposes it.
    /// </summary>
    public KvCache CreateKvCache(long batch, long capacity, Device device)
    {
        if (batch < 1) throw new ArgumentException($"KV cache batch must be >= 1, got {batch}.");
        if (capacity < 1) throw new ArgumentException($"KV cache capacity must be >= 1, got {capacity}.");
        var shape = LastAttentionShape;
        return new KvCache(Layers.Count, batch, shape.KvHeads, capacity, shape.HeadDim, ComputeDtype, device);
    }

    /// <summary>
    /// Incremental forward for generation: (B, T) int64 <paramref name="tokens"/> continue the sequences held in
    /// <paramref name="cache"/> (cache slots [Length, Length + T)); returns their (B, T, V) logits and advances the cache by T.
    /// <paramref name="positions"/> (B, T) int64 are the tokens' absolute positions (the rotary angles), so rows may sit at
    /// different offsets within the cache; <paramref name="attendable"/> (B, T) bool says which of the new slots later
    /// queries may attend to (false for padding). A query attends causally to the attendable slots up to and including
    /// its own, and always to its own slot, so a padding query never has an empty softmax (its output is meaningless).
    /// Left-padded prompts: pad slots not attendable, positions counting from each row's first real token.
    /// Always runs under no_grad; LoRA adapters apply as in <see cref="forward"/> (dropout only in training mode).
    /// </summary>
    public Tensor ForwardWithCache(Tensor tokens, Tensor positions, Tensor attendable, KvCache cache)
    {
        ArgumentNullException.ThrowIfNull(cache);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        long start = cache.Length, time = tokens.shape[^1];
        var (cos, sin, allowed) = PrepareCachedStep(tokens, positions, attendable, cache);
        var h = Embed(tokens);
        for (int i = 0; i < Layers.Count; i++)
            h = Layers[i].ForwardCached(h, cos, sin, allowed, cache.Keys[i], cache.Values[i], start);
        var logits = Logits(h);
        cache.Advance(time);
        return logits.MoveToOuterDisposeScope();
    }

    /// <summary>Parameters that require grad (the LoRA A and B matrices), in registration order.</summary>
    public IReadOnlyList<(string Name, Parameter Parameter)> TrainableParameters() =>
        named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter)).ToList();

    /// <summary>Frozen base weights, in registration order.</summary>
    public IReadOnlyList<(string Name, Tensor Tensor)> FrozenParameters() =>
        named_parameters().Where(p => !p.parameter.requires_grad).Select(p => (p.name, (Tensor)p.parameter)).ToList();

    /// <summary>The dtype the model computes in: that of its frozen weights (see <see cref="CastBaseWeights"/>).</summary>
    public abstract ScalarType ComputeDtype { get; }

    /// <summary>
    /// Casts the frozen base weights to <paramref name="dtype"/> (the compute dtype from then on); LoRA A and B keep
    /// their fp32 values, and each adapter casts at its boundary (see <see cref="LoraLinear.Forward"/>).
    /// </summary>
    public void CastBaseWeights(ScalarType dtype)
    {
        if (dtype is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16))
            throw new ArgumentException($"The compute dtype must be Float32, Float16 or BFloat16, got {dtype}.", nameof(dtype));
        foreach (var module in modules())
        {
            if (module is LoraLinear linear) linear.CastWeight(dtype);
            else if (!module.named_children().Any() && module.named_parameters(recurse: false).Any()) module.to(dtype);
        }
    }

    /// <summary>
    /// Folds every LoRA adapter into its weight (see <see cref="LoraLinear.Fold"/>) until the handle is disposed:
    /// for no-grad, eval-mode passes that must not change A or B meanwhile.
    /// </summary>
    internal IDisposable FoldAdapters()
    {
        var adapted = modules().OfType<LoraLinear>().Where(l => l.HasAdapter).ToArray();
        var handle = new FoldedAdapters(adapted);
        try
        {
            foreach (var layer in adapted) layer.Fold();
        }
        catch
        {
            handle.Dispose(); // never leave a model half folded
            throw;
        }
        return handle;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Rotary.Dispose();
            Dropout.Dispose();
        }
        base.Dispose(disposing);
    }

    /// <summary>cos/sin (T, width) for positions 0..T-1. Runs in the caller's scope.</summary>
    private (Tensor Cos, Tensor Sin) RotaryFor(long length, Device device)
    {
        if (length > MaxSeqLen)
            throw new ArgumentException($"Sequence length {length} exceeds MaxSeqLen {MaxSeqLen}.");
        return Rotary.For(device, ComputeDtype, length);
    }

    /// <summary>
    /// The inputs every layer's cached step shares, after checking the call against the cache: cos/sin (B, 1, T, width)
    /// gathered at <paramref name="positions"/> from the rotary table, and which cache slots each query may
    /// attend to, (B, 1, T, start + T). Marks the new slots' attendability in the cache. Runs in the caller's scope.
    /// </summary>
    private (Tensor Cos, Tensor Sin, Tensor Allowed) PrepareCachedStep(Tensor tokens, Tensor positions, Tensor attendable, KvCache cache)
    {
        if (tokens.ndim != 2) throw new ArgumentException($"tokens must be (B, T), got shape [{string.Join(", ", tokens.shape)}].");
        long batch = tokens.shape[0], time = tokens.shape[1], start = cache.Length;
        if (!positions.shape.SequenceEqual(tokens.shape) || !attendable.shape.SequenceEqual(tokens.shape))
            throw new ArgumentException("positions and attendable must have the shape of tokens.");
        if (batch != cache.Batch) throw new ArgumentException($"tokens have batch {batch}, the KV cache {cache.Batch}.");
        if (cache.Layers != Layers.Count) throw new ArgumentException("The KV cache was made for a different model.");
        if (start + time > cache.Capacity)
            throw new ArgumentException($"The KV cache holds {cache.Capacity} positions; {start} used, {time} more requested.");
        var device = tokens.device;
        if (time > 0)
        {
            long maxPosition = positions.max().item<long>(), minPosition = positions.min().item<long>();
            if (minPosition < 0 || maxPosition >= MaxSeqLen)
                throw new ArgumentException($"Positions must lie in [0, MaxSeqLen = {MaxSeqLen}), got [{minPosition}, {maxPosition}].");
        }

        var (cosTable, sinTable) = Rotary.For(device, ComputeDtype, MaxSeqLen);   // (MaxSeqLen, width)
        long width = cosTable.shape[1];
        var flat = positions.reshape(-1).to_type(ScalarType.Int64);
        var cos = cosTable.index_select(0, flat).view(batch, 1, time, width);       // (B, 1, T, width)
        var sin = sinTable.index_select(0, flat).view(batch, 1, time, width);

        cache.KeyMask.narrow(1, start, time).copy_(attendable.to_type(ScalarType.Bool));
        long keys = start + time;
        var keyIndex = arange(keys, ScalarType.Int64, device).unsqueeze(0);             // (1, S)
        var queryIndex = arange(start, keys, 1, ScalarType.Int64, device).unsqueeze(1); // (T, 1)
        var causal = keyIndex.le(queryIndex);                                            // (T, S)
        var own = keyIndex.eq(queryIndex);                                               // (T, S)
        var valid = cache.KeyMask.narrow(1, 0, keys).unsqueeze(1);                       // (B, 1, S)
        var allowed = causal.logical_and(valid.logical_or(own)).unsqueeze(1);            // (B, 1, T, S)
        return (cos, sin, allowed);
    }

    private sealed class FoldedAdapters(LoraLinear[] layers) : IDisposable
    {
        public void Dispose()
        {
            foreach (var layer in layers) layer.Unfold();
        }
    }
}
