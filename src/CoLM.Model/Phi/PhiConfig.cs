namespace CoLM.Model.Phi;

/// <summary>
/// Shape of a Phi decoder (Hugging Face PhiForCausalLM), as read from config.json. Hidden must divide by Heads,
/// Heads by KeyValueHeads, and the rotary part of a head, RotaryDim = (int)(PartialRotaryFactor * HeadDim), must be even.
/// </summary>
public sealed record PhiConfig(
    int VocabSize,
    int Hidden,
    int Intermediate,
    int Layers,
    int Heads,
    int KeyValueHeads,
    double PartialRotaryFactor,
    double RopeTheta,
    double LayerNormEps,
    int MaxPositions)
{
    public int HeadDim => Hidden / Heads;

    /// <summary>Leading dimensions of each head that get rotary positions; the remaining HeadDim - RotaryDim pass through.</summary>
    public int RotaryDim => (int)(PartialRotaryFactor * HeadDim);

    /// <summary>Width of the k_proj and v_proj outputs.</summary>
    public int KeyValueDim => KeyValueHeads * HeadDim;

    internal void Validate()
    {
        if (VocabSize < 1) throw new ArgumentException($"vocab_size must be >= 1, got {VocabSize}.");
        if (Hidden < 1) throw new ArgumentException($"hidden_size must be >= 1, got {Hidden}.");
        if (Intermediate < 1) throw new ArgumentException($"intermediate_size must be >= 1, got {Intermediate}.");
        if (Layers < 1) throw new ArgumentException($"num_hidden_layers must be >= 1, got {Layers}.");
        if (Heads < 1 || Hidden % Heads != 0)
            throw new ArgumentException($"hidden_size ({Hidden}) must be a multiple of num_attention_heads ({Heads}).");
        if (KeyValueHeads < 1 || Heads % KeyValueHeads != 0)
            throw new ArgumentException($"num_attention_heads ({Heads}) must be a multiple of num_key_value_heads ({KeyValueHeads}).");
        if (!(PartialRotaryFactor > 0 && PartialRotaryFactor <= 1))
            throw new ArgumentException($"partial_rotary_factor must be in (0, 1], got {PartialRotaryFactor}.");
        if (RotaryDim < 2 || RotaryDim % 2 != 0)
            throw new ArgumentException(
                $"The rotary part of a head, (int)(partial_rotary_factor * head_dim) = {RotaryDim}, must be even and >= 2.");
        if (!(RopeTheta > 0)) throw new ArgumentException($"rope_theta must be > 0, got {RopeTheta}.");
        if (!(LayerNormEps > 0)) throw new ArgumentException($"layer_norm_eps must be > 0, got {LayerNormEps}.");
        if (MaxPositions < 1) throw new ArgumentException($"max_position_embeddings must be >= 1, got {MaxPositions}.");
    }
}
