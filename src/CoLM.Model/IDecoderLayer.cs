using static TorchSharp.torch;

namespace CoLM.Model;

/// <summary>
/// A decoder layer as <see cref="CausalDecoder"/>'s trunk, head and KV-cache plumbing drives it, whatever the
/// architecture's block looks like inside. x is the block input (B, T, D); cos/sin come from the model's rotary table.
/// Runs in the caller's scope.
/// </summary>
internal interface IDecoderLayer
{
    /// <summary>The layer's v_proj, adapted or not.</summary>
    LoraLinear ValueProjection { get; }

    /// <summary>Causal over the T positions, (B, T, D) -> (B, T, D); records v_proj's LoRA input and output in <paramref name="valueTap"/>.</summary>
    Tensor Forward(Tensor x, Tensor cos, Tensor sin, LoraTap? valueTap);

    /// <summary>
    /// The layer on new positions with a KV cache: their rotated keys and values go into the layer's cache at
    /// [start, start + T), and the queries attend to cache positions [0, start + T) where <paramref name="allowed"/> is true.
    /// </summary>
    Tensor ForwardCached(Tensor x, Tensor cos, Tensor sin, Tensor allowed, Tensor keyCache, Tensor valueCache, long start);

    /// <summary>The layer's attention on x normed as in <see cref="Forward"/>, split as <see cref="CausalDecoder.MixLastAttention"/> describes.</summary>
    (Tensor MixedValues, Tensor MixedLoraHidden) MixAttention(Tensor x, Tensor cos, Tensor sin);

    /// <summary>The layer after attention's head mix, position by position, as <see cref="CausalDecoder.ForwardAfterLastMix"/> describes.</summary>
    Tensor ForwardAfterMix(Tensor residual, Tensor mixed);
}
