using TorchSharp;
using TorchSharp.Utils;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace CoLM.Model;

/// <summary>Queries or keys (B, heads, T, hd) rotated by position, with cos/sin from a <see cref="RotaryTable"/> (whose width may be less than hd).</summary>
internal delegate Tensor Rotation(Tensor x, Tensor cos, Tensor sin);

/// <summary>
/// Causal multi-head self-attention with separate q/k/v/output projections and rotary positions, shared by Llama
/// (o_proj, <see cref="RotaryTable.Apply"/>) and Phi (dense, partial rotary); each architecture builds the projections.
/// With grouped-query attention (KvHeads &lt; Heads) k_proj and v_proj output KvHeads heads, each repeated for
/// Heads / KvHeads consecutive query heads (Hugging Face's repeat_kv).
/// </summary>
internal sealed class CausalAttention : nn.Module
{
    [ComponentName(Name = "q_proj")] private LoraLinear _q;
    [ComponentName(Name = "k_proj")] private LoraLinear _k;
    [ComponentName(Name = "v_proj")] private LoraLinear _v;
    private LoraLinear _output; // registered under the architecture's name for it, see RegisterComponents
    private readonly long _heads;
    private readonly long _kvHeads;
    private readonly long _headDim;
    private readonly Rotation _rotate;

    /// <summary>Registers q_proj, k_proj, v_proj, then the output projection as <paramref name="outputName"/> (o_proj, dense).</summary>
    public CausalAttention(
        LoraLinear q, LoraLinear k, LoraLinear v, LoraLinear output, string outputName, AttentionShape shape, Rotation rotate)
        : base(nameof(CausalAttention))
    {
        _heads = shape.Heads;
        _kvHeads = shape.KvHeads;
        _headDim = shape.HeadDim;
        _rotate = rotate;
        _q = q;
        _k = k;
        _v = v;
        _output = output;
        register_module("q_proj", _q);
        register_module("k_proj", _k);
        register_module("v_proj", _v);
        register_module(outputName, _output);
    }

    public LoraLinear ValueProjection => _v;

    public LoraLinear OutputProjection => _output;

    /// <summary>(B, T, D) -> (B, T, D).</summary>
    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, LoraTap? valueTap) => _output.Forward(Mix(x, cos, sin, valueTap));

    /// <summary>Attention up to the output projection: each head's causal softmax mix of the values, (B, T, D) -> (B, T, H x hd).</summary>
    public Tensor Mix(Tensor x, Tensor cos, Tensor sin, LoraTap? valueTap)
    {
        long batch = x.shape[0], time = x.shape[1];
        var (q, k) = RotatedQueriesAndKeys(x, cos, sin);                                   // (B, H, T, hd) each
        var v = RepeatKv(Heads(_v.Forward(x, valueTap), _kvHeads, batch, time));           // (B, H, T, hd)
        var y = F.scaled_dot_product_attention(q, k, v, is_casual: true);                  // (B, H, T, hd), scale 1/sqrt(hd)
        return y.transpose(1, 2).reshape(batch, time, _heads * _headDim);                  // (B, T, H x hd)
    }

    /// <summary>
    /// For the zeroth-order sketch, which perturbs only v_proj's LoRA B. With P = softmax(causal(q k^T / sqrt(hd)))
    /// per head, v_proj's output V = V0 + s dB u (u = A x, the LoRA hidden) mixes to P V0 + s (P u) dB^T, rows of
    /// dB^T split by kv head (with grouped-query attention each kv head's rows serve its group of query heads). Returns P V0 as (B, T, H x hd), the same as <see cref="Mix"/>, and P u per head as (B, T, H, r),
    /// from one attention pass over the values and u side by side. No dropout: call it in eval mode.
    /// </summary>
    public (Tensor MixedValues, Tensor MixedLoraHidden) MixValuesAndLoraHidden(Tensor x, Tensor cos, Tensor sin)
    {
        long batch = x.shape[0], time = x.shape[1];
        var tap = new LoraTap();
        var (q, k) = RotatedQueriesAndKeys(x, cos, sin);                                   // (B, H, T, hd) each
        var v = RepeatKv(Heads(_v.Forward(x, tap), _kvHeads, batch, time));                // (B, H, T, hd)
        var u = tap.LoraHidden ?? throw new InvalidOperationException("v_proj has no LoRA adapter.");
        long rank = u.shape[^1];
        var shared = u.to_type(v.dtype).unsqueeze(1).expand(batch, _heads, time, rank);    // (B, H, T, r), u is shared by all heads
        var mixed = F.scaled_dot_product_attention(q, k, cat([v, shared], -1), is_casual: true); // (B, H, T, hd + r)
        var values = mixed.narrow(-1, 0, _headDim).transpose(1, 2).reshape(batch, time, _heads * _headDim); // (B, T, H x hd)
        var hidden = mixed.narrow(-1, _headDim, rank).transpose(1, 2);                     // (B, T, H, r)
        return (values, hidden);
    }

    /// <summary>
    /// Attention for <see cref="CausalDecoder.ForwardWithCache"/>: x (B, T, D) holds the new positions, cos/sin (B, 1, T, rotary width)
    /// their rotary angles; their rotated keys and values are written into this layer's cache at [start, start + T), and the
    /// queries attend to cache positions [0, start + T) where <paramref name="allowed"/> (B, 1, T, start + T) is true.
    /// Returns (B, T, D) after the output projection. Runs in the caller's scope, under no_grad.
    /// </summary>
    public Tensor ForwardCached(Tensor x, Tensor cos, Tensor sin, Tensor allowed, Tensor keyCache, Tensor valueCache, long start)
    {
        long batch = x.shape[0], time = x.shape[1];
        var q = _rotate(Heads(_q.Forward(x), _heads, batch, time), cos, sin);              // (B, H, T, hd)
        var k = _rotate(Heads(_k.Forward(x), _kvHeads, batch, time), cos, sin);            // (B, KV, T, hd)
        var v = Heads(_v.Forward(x), _kvHeads, batch, time);                                // (B, KV, T, hd)
        keyCache.narrow(2, start, time).copy_(k);
        valueCache.narrow(2, start, time).copy_(v);
        var keys = RepeatKv(keyCache.narrow(2, 0, start + time));                           // (B, H, S, hd)
        var values = RepeatKv(valueCache.narrow(2, 0, start + time));
        var y = F.scaled_dot_product_attention(q, keys, values, attn_mask: allowed);        // (B, H, T, hd)
        return _output.Forward(y.transpose(1, 2).reshape(batch, time, _heads * _headDim)); // (B, T, D)
    }

    /// <summary>
    /// Nothing to do: the constructor registered every component. The base version would register _output a second
    /// time under its field name, since no constant [ComponentName] fits both architectures' names for it.
    /// </summary>
    protected override void RegisterComponents()
    {
    }

    private (Tensor Q, Tensor K) RotatedQueriesAndKeys(Tensor x, Tensor cos, Tensor sin)
    {
        long batch = x.shape[0], time = x.shape[1];
        var q = _rotate(Heads(_q.Forward(x), _heads, batch, time), cos, sin);              // (B, H, T, hd)
        var k = _rotate(Heads(_k.Forward(x), _kvHeads, batch, time), cos, sin);            // (B, KV, T, hd)
        return (q, RepeatKv(k));
    }

    /// <summary>(B, KV, T, hd) -> (B, H, T, hd), kv head j serving query heads j*g .. (j+1)*g - 1 (g = H / KV); the input itself when KV = H.</summary>
    private Tensor RepeatKv(Tensor x) => _kvHeads == _heads ? x : x.repeat_interleave(_heads / _kvHeads, dim: 1);

    /// <summary>A projection's output (B, T, heads x hd) split into heads, (B, heads, T, hd).</summary>
    private Tensor Heads(Tensor projected, long heads, long batch, long time) =>
        projected.view(batch, time, heads, _headDim).transpose(1, 2);
}
