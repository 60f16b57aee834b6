using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace CoLM.Model.Phi;

// Phi (Hugging Face PhiForCausalLM) with LoRA adapters, in dependency order: LayerNorm, partial rotary table, MLP, block, weights, decoder; attention is
// the shared CausalAttention over biased q/k/v/dense projections, built by PhiWeights. Weights come from a checkpoint (see PhiLoader) and are
// frozen; only LoRA A/B matrices require grad. Projections are LoraLinear (LoraLinear.cs) with a bias. Tensor lifetime follows LlamaDecoder.cs: public methods open a
// dispose scope and move their result out; internal helpers run in their caller's scope.
//
// Module names follow Hugging Face without the "model." prefix (as LlamaDecoder does): embed_tokens.weight,
// layers.{i}.input_layernorm.{weight,bias}, layers.{i}.self_attn.{q_proj,k_proj,v_proj,dense}.{weight,bias},
// layers.{i}.mlp.{fc1,fc2}.{weight,bias}, final_layernorm.{weight,bias}, lm_head.{weight,bias};
// LoRA adds {projection}.lora_A (r, in) and .lora_B (out, r).
//
// Fields holding parameters or submodules carry [ComponentName] equal to the registered name (see LlamaDecoder.cs).

/// <summary>LayerNorm over the last dimension with a frozen weight and bias.</summary>
internal sealed class PhiLayerNorm : nn.Module
{
    [ComponentName(Name = "weight")] private Parameter _weight; // (D)
    [ComponentName(Name = "bias")] private Parameter _bias;     // (D)
    private readonly double _eps;

    public PhiLayerNorm(Parameter weight, Parameter bias, double eps) : base(nameof(PhiLayerNorm))
    {
        _weight = weight;
        _bias = bias;
        _eps = eps;
        register_parameter("weight", _weight);
        register_parameter("bias", _bias);
        RegisterComponents();
    }

    public Parameter Weight => _weight;

    public Tensor Forward(Tensor x) => F.layer_norm(x, [_weight.shape[0]], _weight, _bias, _eps);
}

/// <summary>
/// Partial rotary positions: the tables are the shared <see cref="RotaryTable"/> built at RotaryDim
/// width; only the first RotaryDim dims of each head are rotated.
/// </summary>
internal static class PhiRotary
{
    /// <summary>x (B, H, T, hd): the first RotaryDim dims rotated by position (x * cos + rotate_half(x) * sin), the rest unchanged.</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        long headDim = x.shape[^1], rotaryDim = cos.shape[^1], half = rotaryDim / 2;
        var rot = rotaryDim == headDim ? x : x.narrow(-1, 0, rotaryDim);
        var rotated = cat([rot.narrow(-1, half, half).neg(), rot.narrow(-1, 0, half)], -1);
        var applied = rot * cos + rotated * sin;
        return rotaryDim == headDim ? applied : cat([applied, x.narrow(-1, rotaryDim, headDim - rotaryDim)], -1);
    }
}

/// <summary>Feed-forward: fc2(gelu_new(fc1(x))), gelu_new being GELU's tanh approximation.</summary>
internal sealed class PhiMlp : nn.Module
{
    [ComponentName(Name = "fc1")] private LoraLinear _fc1;
    [ComponentName(Name = "fc2")] private LoraLinear _fc2;

    public PhiMlp(string name, LoraSettings lora, PhiWeights weights) : base(nameof(PhiMlp))
    {
        _fc1 = weights.Linear(name, "fc1", lora);
        _fc2 = weights.Linear(name, "fc2", lora);
        register_module("fc1", _fc1);
        register_module("fc2", _fc2);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x) => _fc2.Forward(GeluNew(_fc1.Forward(x)));

    /// <summary>0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).</summary>
    internal static Tensor GeluNew(Tensor x)
    {
        var inner = (x + x.pow(3) * 0.044715) * Math.Sqrt(2.0 / Math.PI);
        return x * 0.5 * (inner.tanh() + 1.0);
    }
}

/// <summary>Phi block: one LayerNorm feeding attention and MLP in parallel, x + attn(ln(x)) + mlp(ln(x)).</summary>
internal sealed class PhiBlock : nn.Module, IDecoderLayer
{
    [ComponentName(Name = "input_layernorm")] private PhiLayerNorm _norm;
    [ComponentName(Name = "self_attn")] private CausalAttention _attn;
    [ComponentName(Name = "mlp")] private PhiMlp _mlp;

    public PhiBlock(string name, PhiConfig config, LoraSettings lora, PhiWeights weights) : base(nameof(PhiBlock))
    {
        _norm = weights.LayerNorm($"{name}.input_layernorm", config.LayerNormEps);
        _attn = weights.Attention($"{name}.self_attn", config, lora);
        _mlp = new PhiMlp($"{name}.mlp", lora, weights);
        register_module("input_layernorm", _norm);
        register_module("self_attn", _attn);
        register_module("mlp", _mlp);
        RegisterComponents();
    }

    public LoraLinear ValueProjection => _attn.ValueProjection;

    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, LoraTap? valueTap)
    {
        var normed = _norm.Forward(x);
        return x + _attn.Forward(normed, cos, sin, valueTap) + _mlp.Forward(normed);
    }

    /// <summary>
    /// The block after attention's head mix, position by position: residual + dense(mixed) + mlp(ln(residual)).
    /// residual (..., D) is the block input, mixed (..., H x hd) the mix at the same positions (leading dims broadcast).
    /// </summary>
    public Tensor ForwardAfterMix(Tensor residual, Tensor mixed) =>
        residual + _attn.OutputProjection.Forward(mixed) + _mlp.Forward(_norm.Forward(residual));

    /// <summary>The block on new positions with a KV cache: (B, T, D) -> (B, T, D).</summary>
    public Tensor ForwardCached(Tensor x, Tensor cos, Tensor sin, Tensor allowed, Tensor keyCache, Tensor valueCache, long start)
    {
        var normed = _norm.Forward(x);
        return x + _attn.ForwardCached(normed, cos, sin, allowed, keyCache, valueCache, start) + _mlp.Forward(normed);
    }

    public (Tensor MixedValues, Tensor MixedLoraHidden) MixAttention(Tensor x, Tensor cos, Tensor sin) =>
        _attn.MixValuesAndLoraHidden(_norm.Forward(x), cos, sin);
}

/// <summary>
/// Builds the frozen parameters of a <see cref="PhiDecoder"/> from a checkpoint, by Hugging Face name. The reader
/// returns a new CPU tensor that the parameter takes over; shapes were checked by the loader. LoRA A initial values
/// come from <see cref="Init"/>, seeded per tensor name.
/// </summary>
internal sealed class PhiWeights(Func<string, Tensor> read, ParameterFactory init)
{
    public ParameterFactory Init { get; } = init;

    /// <summary>The Hugging Face name of a module-relative parameter name (everything but lm_head lives under "model.").</summary>
    public static string HfName(string name) => name.StartsWith("lm_head.", StringComparison.Ordinal) ? name : $"model.{name}";

    public Parameter Frozen(string name)
    {
        var parameter = new Parameter(read(HfName(name)), requires_grad: false);
        parameter.DetachFromDisposeScope();
        return parameter;
    }

    /// <summary>The projection {prefix}.{projection}, with an adapter when the settings target it.</summary>
    public LoraLinear Linear(string prefix, string projection, LoraSettings lora) =>
        Linear($"{prefix}.{projection}", lora.Covers(projection) ? lora : null);

    public LoraLinear Linear(string name, LoraSettings? adapter) =>
        new(name, Frozen($"{name}.weight"), Frozen($"{name}.bias"), adapter, Init);

    /// <summary>Causal self-attention over biased q/k/v projections and a biased dense output, rotating the first RotaryDim dims of each head.</summary>
    public CausalAttention Attention(string name, PhiConfig config, LoraSettings lora) =>
        new(Linear(name, "q_proj", lora), Linear(name, "k_proj", lora), Linear(name, "v_proj", lora), Linear(name, "dense", lora), "dense",
            new AttentionShape(config.Heads, config.KeyValueHeads, config.HeadDim), PhiRotary.Apply);

    public PhiLayerNorm LayerNorm(string name, double eps) => new(Frozen($"{name}.weight"), Frozen($"{name}.bias"), eps);
}

/// <summary>
/// Phi decoder (Hugging Face PhiForCausalLM): embedding, N parallel blocks (LayerNorm, then causal partial-rotary
/// attention and a gelu_new MLP side by side, both added to the residual), final LayerNorm, biased lm_head.
/// Base weights are frozen; only LoRA A/B matrices on the targets named in the settings require grad.
/// <see cref="CausalDecoder"/> splits it into trunk and head; since attention and MLP read the same normed input,
/// a perturbation of the last v_proj reaches the logits only through dense. Load one with <see cref="PhiLoader"/>.
/// </summary>
public sealed class PhiDecoder : CausalDecoder
{
    /// <summary>Every projection a LoRA adapter can be attached to, in the order of a block.</summary>
    public static IReadOnlyList<string> KnownLoraTargets { get; } = ["q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"];

    [ComponentName(Name = "embed_tokens")] private TokenEmbedding _embed;
    [ComponentName(Name = "layers")] private ModuleList<PhiBlock> _layers;
    [ComponentName(Name = "final_layernorm")] private PhiLayerNorm _norm;
    [ComponentName(Name = "lm_head")] private LoraLinear _lmHead;

    internal PhiDecoder(PhiConfig config, LoraSettings lora, long seed, Func<string, Tensor> read) : base(nameof(PhiDecoder))
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(lora);
        ArgumentNullException.ThrowIfNull(read);
        config.Validate();
        ValidateLora(lora);
        Config = config;
        Lora = lora;

        var init = new ParameterFactory(seed);
        Dropout = init.Dropout;
        var weights = new PhiWeights(read, init);
        _embed = new TokenEmbedding(weights.Frozen("embed_tokens.weight"));
        var blocks = new PhiBlock[config.Layers];
        for (int i = 0; i < blocks.Length; i++) blocks[i] = new PhiBlock($"layers.{i}", config, lora, weights);
        _layers = new ModuleList<PhiBlock>(blocks);
        Layers = blocks;
        _norm = weights.LayerNorm("final_layernorm", config.LayerNormEps);
        _lmHead = weights.Linear("lm_head", adapter: null);
        Rotary = new RotaryTable(config.MaxPositions, config.RotaryDim, config.RopeTheta);

        register_module("embed_tokens", _embed);
        register_module("layers", _layers);
        register_module("final_layernorm", _norm);
        register_module("lm_head", _lmHead);
        RegisterComponents();
    }

    public PhiConfig Config { get; }

    public override LoraSettings Lora { get; }

    public override int VocabSize => Config.VocabSize;

    public override int MaxSeqLen => Config.MaxPositions;

    public override ScalarType ComputeDtype => _norm.Weight.dtype;

    internal override AttentionShape LastAttentionShape => new(Config.Heads, Config.KeyValueHeads, Config.HeadDim);

    private protected override IReadOnlyList<IDecoderLayer> Layers { get; }

    private protected override RotaryTable Rotary { get; }

    private protected override DropoutSource Dropout { get; }

    private protected override Tensor Embed(Tensor tokens) => _embed.Forward(tokens);

    private protected override Tensor Logits(Tensor hidden) => _lmHead.Forward(_norm.Forward(hidden));

    /// <summary>Rank >= 1, dropout in [0, 1), every target one of <see cref="KnownLoraTargets"/>.</summary>
    internal static void ValidateLora(LoraSettings lora)
    {
        if (lora.Rank < 1) throw new ArgumentException($"LoRA rank must be >= 1, got {lora.Rank}.");
        if (!(lora.Dropout >= 0 && lora.Dropout < 1)) throw new ArgumentException($"LoRA dropout must be in [0, 1), got {lora.Dropout}.");
        foreach (var target in lora.Targets)
        {
            if (!KnownLoraTargets.Contains(target))
                throw new ArgumentException(
                    $"Unknown LoRA target '{target}' for Phi; known targets: {string.Join(", ", KnownLoraTargets)}.");
        }
    }
}
