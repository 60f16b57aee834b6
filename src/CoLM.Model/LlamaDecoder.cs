using CoLM.Selection;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace CoLM.Model;

// A Llama-style decoder with LoRA adapters, in dependency order: RMSNorm, attention's projections, MLP,
// block, decoder. The parts both architectures use have their own files: ParameterFactory,
// LoraLinear (with LoraTap), DropoutSource, RotaryTable, CausalAttention, KvCache, TokenEmbedding.
//
// Tensor lifetime (the rule for the whole of CoLM.Model): each public method opens a
// torch.NewDisposeScope(); whatever it returns is moved to the caller's scope; functions never
// dispose their inputs. Internal helpers run inside their caller's scope and open none.
//
// Names follow Hugging Face Llama without the "model." prefix: embed_tokens.weight,
// layers.{i}.input_layernorm.weight, layers.{i}.self_attn.{q,k,v,o}_proj.weight,
// layers.{i}.post_attention_layernorm.weight, layers.{i}.mlp.{gate,up,down}_proj.weight,
// norm.weight, lm_head.weight; LoRA adds {projection}.lora_A (r, in) and .lora_B (out, r).
//
// Every field holding a parameter or submodule carries [ComponentName] equal to its registered
// name: TorchSharp's Module.to() finds fields by that name to swap in the moved tensors, and
// RegisterComponents() would otherwise register the field a second time under its C# name
// (CausalAttention, whose output projection's name depends on the architecture, registers by hand instead).

/// <summary>Root-mean-square layer norm (TorchSharp has none): x / sqrt(mean(x^2) + eps) * weight, computed in fp32.</summary>
internal sealed class RmsNorm : nn.Module
{
    [ComponentName(Name = "weight")] private Parameter _weight; // (D)
    private readonly Scalar _eps; // kept reachable for native calls (HeldScalars)

    public RmsNorm(long dim, double eps) : base(nameof(RmsNorm))
    {
        _eps = eps.ToScalar();
        _weight = ParameterFactory.Ones([dim]);
        register_parameter("weight", _weight);
        RegisterComponents();
    }

    public Parameter Weight => _weight;

    public Tensor Forward(Tensor x)
    {
        var xf = x.dtype == float32 ? x : x.to_type(float32);
        var normed = xf * (xf.square().mean([-1L], keepdim: true) + _eps).rsqrt();
        return (normed.dtype == x.dtype ? normed : normed.to_type(x.dtype)) * _weight;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _eps.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>Llama's attention: <see cref="CausalAttention"/> over seeded q/k/v/o_proj projections, rotary over whole heads.</summary>
internal static class LlamaAttention
{
    public static CausalAttention Create(string name, DecoderConfig config, LoraSettings lora, ParameterFactory init)
    {
        const double std = 0.02;
        double outStd = std / Math.Sqrt(2.0 * config.Layers); // GPT-2 style: residual writes scaled by depth
        return new CausalAttention(
            Projection(name, "q_proj", config.Dim, config.Dim, std, lora, init),
            Projection(name, "k_proj", config.Dim, config.KvDim, std, lora, init),
            Projection(name, "v_proj", config.Dim, config.KvDim, std, lora, init),
            Projection(name, "o_proj", config.Dim, config.Dim, outStd, lora, init),
            "o_proj",
            new AttentionShape(config.Heads, config.KvHeads, config.HeadDim),
            RotaryTable.Apply);
    }

    /// <summary>The seeded projection {prefix}.{projection}, with an adapter when the settings target it.</summary>
    internal static LoraLinear Projection(
        string prefix, string projection, long inFeatures, long outFeatures, double std, LoraSettings lora, ParameterFactory init) =>
        new($"{prefix}.{projection}", inFeatures, outFeatures, std, lora.Covers(projection) ? lora : null, init);
}

/// <summary>SwiGLU feed-forward: down(silu(gate(x)) * up(x)).</summary>
internal sealed class Mlp : nn.Module
{
    [ComponentName(Name = "gate_proj")] private LoraLinear _gate;
    [ComponentName(Name = "up_proj")] private LoraLinear _up;
    [ComponentName(Name = "down_proj")] private LoraLinear _down;

    public Mlp(string name, DecoderConfig config, LoraSettings lora, ParameterFactory init) : base(nameof(Mlp))
    {
        const double std = 0.02;
        double outStd = std / Math.Sqrt(2.0 * config.Layers);
        _gate = LlamaAttention.Projection(name, "gate_proj", config.Dim, config.HiddenDim, std, lora, init);
        _up = LlamaAttention.Projection(name, "up_proj", config.Dim, config.HiddenDim, std, lora, init);
        _down = LlamaAttention.Projection(name, "down_proj", config.HiddenDim, config.Dim, outStd, lora, init);
        register_module("gate_proj", _gate);
        register_module("up_proj", _up);
        register_module("down_proj", _down);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x) => _down.Forward(F.silu(_gate.Forward(x)) * _up.Forward(x));
}

/// <summary>Pre-norm decoder block: x + attn(norm(x)), then h + mlp(norm(h)).</summary>
internal sealed class DecoderBlock : nn.Module, IDecoderLayer
{
    [ComponentName(Name = "input_layernorm")] private RmsNorm _attnNorm;
    [ComponentName(Name = "self_attn")] private CausalAttention _attn;
    [ComponentName(Name = "post_attention_layernorm")] private RmsNorm _mlpNorm;
    [ComponentName(Name = "mlp")] private Mlp _mlp;

    public DecoderBlock(string name, DecoderConfig config, LoraSettings lora, ParameterFactory init) : base(nameof(DecoderBlock))
    {
        _attnNorm = new RmsNorm(config.Dim, config.NormEps);
        _attn = LlamaAttention.Create($"{name}.self_attn", config, lora, init);
        _mlpNorm = new RmsNorm(config.Dim, config.NormEps);
        _mlp = new Mlp($"{name}.mlp", config, lora, init);
        register_module("input_layernorm", _attnNorm);
        register_module("self_attn", _attn);
        register_module("post_attention_layernorm", _mlpNorm);
        register_module("mlp", _mlp);
        RegisterComponents();
    }

    public LoraLinear ValueProjection => _attn.ValueProjection;

    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, LoraTap? valueTap) =>
        ForwardAfterMix(x, _attn.Mix(_attnNorm.Forward(x), cos, sin, valueTap));

    /// <summary>The block on new positions with a KV cache (see <see cref="CausalAttention.ForwardCached"/>): (B, T, D) -> (B, T, D).</summary>
    public Tensor ForwardCached(Tensor x, Tensor cos, Tensor sin, Tensor allowed, Tensor keyCache, Tensor valueCache, long start)
    {
        var h = x + _attn.ForwardCached(_attnNorm.Forward(x), cos, sin, allowed, keyCache, valueCache, start);
        return h + _mlp.Forward(_mlpNorm.Forward(h));
    }

    public (Tensor MixedValues, Tensor MixedLoraHidden) MixAttention(Tensor x, Tensor cos, Tensor sin) =>
        _attn.MixValuesAndLoraHidden(_attnNorm.Forward(x), cos, sin);

    /// <summary>
    /// The block after attention's head mixing, position by position: o_proj, residual, norm, MLP, residual.
    /// residual (..., D) is the block input, mixed (..., D) the heads' mix at the same positions; leading
    /// dimensions broadcast, so one residual row can serve several mixes of it. Returns (..., D).
    /// </summary>
    public Tensor ForwardAfterMix(Tensor residual, Tensor mixed)
    {
        var h = residual + _attn.OutputProjection.Forward(mixed);
        return h + _mlp.Forward(_mlpNorm.Forward(h));
    }
}

/// <summary>
/// Llama-style decoder: embedding, N pre-norm blocks (RMSNorm, causal rotary attention, RMSNorm,
/// SwiGLU), final RMSNorm, lm_head (a copy of the embedding when <see cref="DecoderConfig.TieEmbeddings"/>). Base weights are frozen and initialised from the seed;
/// only LoRA A/B matrices require grad. The trunk/head split and the KV-cache forward are <see cref="CausalDecoder"/>'s.
/// </summary>
public sealed class LlamaDecoder : CausalDecoder
{
    [ComponentName(Name = "embed_tokens")] private TokenEmbedding _embed;
    [ComponentName(Name = "layers")] private ModuleList<DecoderBlock> _layers;
    [ComponentName(Name = "norm")] private RmsNorm _norm;
    [ComponentName(Name = "lm_head")] private LoraLinear _lmHead;

    public LlamaDecoder(DecoderConfig config, LoraSettings lora, long seed) : base(nameof(LlamaDecoder))
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(lora);
        config.Validate();
        lora.Validate();
        Config = config;
        Lora = lora;
        Seed = seed;

        var init = new ParameterFactory(seed);
        Dropout = init.Dropout;
        _embed = new TokenEmbedding(init.Normal("embed_tokens.weight", [config.VocabSize, config.Dim], 0.02));
        var blocks = new DecoderBlock[config.Layers];
        for (int i = 0; i < blocks.Length; i++) blocks[i] = new DecoderBlock($"layers.{i}", config, lora, init);
        _layers = new ModuleList<DecoderBlock>(blocks);
        Layers = blocks;
        _norm = new RmsNorm(config.Dim, config.NormEps);
        // std 1/sqrt(dim): after the final RMSNorm (unit RMS, frozen gain) this lets the frozen
        // head express confident predictions; at 0.02 logits are capped near +-0.02*dim and
        // LoRA alone cannot push the loss far below uniform.
        _lmHead = new LoraLinear("lm_head", config.Dim, config.VocabSize, 1.0 / Math.Sqrt(config.Dim), lora: null, init);
        if (config.TieEmbeddings)
        {
            using var noGrad = no_grad();
            _lmHead.Weight.copy_(_embed.Weight);
        }
        Rotary = new RotaryTable(config.MaxSeqLen, config.HeadDim, config.RopeTheta, config.RopeScaling);

        register_module("embed_tokens", _embed);
        register_module("layers", _layers);
        register_module("norm", _norm);
        register_module("lm_head", _lmHead);
        RegisterComponents();
    }

    public DecoderConfig Config { get; }

    public override LoraSettings Lora { get; }

    public override int VocabSize => Config.VocabSize;

    public override int MaxSeqLen => Config.MaxSeqLen;

    public long Seed { get; }

    public override ScalarType ComputeDtype => _norm.Weight.dtype;

    internal override AttentionShape LastAttentionShape => new(Config.Heads, Config.KvHeads, Config.HeadDim);

    private protected override IReadOnlyList<IDecoderLayer> Layers { get; }

    private protected override RotaryTable Rotary { get; }

    private protected override DropoutSource Dropout { get; }

    private protected override Tensor Embed(Tensor tokens) => _embed.Forward(tokens);

    private protected override Tensor Logits(Tensor hidden) => _lmHead.Forward(_norm.Forward(hidden));
}
