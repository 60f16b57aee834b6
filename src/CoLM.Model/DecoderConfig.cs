namespace CoLM.Model;

/// <summary>
/// Shape of a Llama-style decoder. Dim must divide by Heads and the head size must be even (rotary pairs).
/// <see cref="KvHeads"/> (grouped-query attention, defaults to Heads) must divide Heads;
/// <see cref="TieEmbeddings"/> makes lm_head start as a copy of the embedding table.
/// </summary>
public sealed record DecoderConfig(
    int VocabSize,
    int Dim,
    int Layers,
    int Heads,
    int HiddenDim,
    int MaxSeqLen,
    double RopeTheta = 10000.0,
    double NormEps = 1e-5)
{
    private readonly int? _kvHeads;

    public int HeadDim => Dim / Heads;

    /// <summary>Key/value heads (grouped-query attention): each serves Heads / KvHeads query heads. Defaults to Heads.</summary>
    public int KvHeads
    {
        get => _kvHeads ?? Heads;
        init => _kvHeads = value;
    }

    /// <summary>Width of the k and v projections' outputs: KvHeads * HeadDim.</summary>
    public int KvDim => KvHeads * HeadDim;

    /// <summary>
    /// Whether lm_head equals the embedding table (Hugging Face tie_word_embeddings). Both are frozen, so the decoder
    /// keeps lm_head as its own copy of the embedding's values rather than sharing one tensor.
    /// </summary>
    public bool TieEmbeddings { get; init; }

    /// <summary>Rotary frequency scaling (Hugging Face rope_scaling); null = none.</summary>
    public RopeScaling? RopeScaling { get; init; }

    internal void Validate()
    {
        if (VocabSize < 1) throw new ArgumentException($"VocabSize must be >= 1, got {VocabSize}.");
        if (Dim < 1) throw new ArgumentException($"Dim must be >= 1, got {Dim}.");
        if (Layers < 1) throw new ArgumentException($"Layers must be >= 1, got {Layers}.");
        if (Heads < 1 || Dim % Heads != 0) throw new ArgumentException($"Dim ({Dim}) must be a multiple of Heads ({Heads}).");
        if (HeadDim % 2 != 0) throw new ArgumentException($"Head size Dim/Heads = {HeadDim} must be even for rotary positions.");
        if (KvHeads < 1 || Heads % KvHeads != 0) throw new ArgumentException($"Heads ({Heads}) must be a multiple of KvHeads ({KvHeads}).");
        if (HiddenDim < 1) throw new ArgumentException($"HiddenDim must be >= 1, got {HiddenDim}.");
        if (MaxSeqLen < 1) throw new ArgumentException($"MaxSeqLen must be >= 1, got {MaxSeqLen}.");
        if (!(RopeTheta > 0)) throw new ArgumentException($"RopeTheta must be > 0, got {RopeTheta}.");
        if (!(NormEps > 0)) throw new ArgumentException($"NormEps must be > 0, got {NormEps}.");
        RopeScaling?.Validate();
    }
}

/// <summary>
/// LoRA adapters: y = W x + (Alpha / Rank) * B(A(dropout(x))) on every projection named in
/// <see cref="Targets"/> (Hugging Face names: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj).
/// </summary>
public sealed record LoraSettings(int Rank, double Alpha, double Dropout, IReadOnlyList<string> Targets)
{
    /// <summary>Every projection a LoRA adapter can be attached to, in the order of a decoder block.</summary>
    public static IReadOnlyList<string> KnownTargets { get; } =
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

    public double Scale => Alpha / Rank;

    internal void Validate()
    {
        if (Rank < 1) throw new ArgumentException($"LoRA rank must be >= 1, got {Rank}.");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException($"LoRA dropout must be in [0, 1), got {Dropout}.");
        foreach (var target in Targets)
        {
            if (!KnownTargets.Contains(target))
                throw new ArgumentException(
                    $"Unknown LoRA target '{target}'; known targets: {string.Join(", ", KnownTargets)}.");
        }
    }

    internal bool Covers(string projection) => Targets.Contains(projection);
}

/// <summary>
/// Rotary frequency scaling for long contexts (Hugging Face config.json "rope_scaling"): "linear" divides every
/// frequency by <see cref="Factor"/> (position interpolation); "llama3" (Llama 3.1) divides only the low frequencies
/// (wavelength above OriginalMaxPositions / LowFreqFactor) by it, keeps the high ones (wavelength below
/// OriginalMaxPositions / HighFreqFactor), and blends linearly in between. Neither scales the attention.
/// </summary>
public sealed record RopeScaling(string Type, double Factor, double LowFreqFactor = 1.0, double HighFreqFactor = 4.0, int OriginalMaxPositions = 8192)
{
    public const string Linear = "linear";
    public const string Llama3 = "llama3";

    /// <summary>
    /// The inverse frequencies of the rotary pairs, theta^(-2i/headDim) for i in [0, headDim/2), scaled by
    /// <paramref name="scaling"/> (none when null). Position t turns pair i by t * result[i] radians.
    /// </summary>
    public static double[] InverseFrequencies(int headDim, double theta, RopeScaling? scaling)
    {
        var inverse = new double[headDim / 2];
        for (int i = 0; i < inverse.Length; i++) inverse[i] = Math.Pow(theta, -2.0 * i / headDim);
        if (scaling is null) return inverse;
        scaling.Validate();
        if (scaling.Type == Linear)
        {
            for (int i = 0; i < inverse.Length; i++) inverse[i] /= scaling.Factor;
            return inverse;
        }

        double lowFreqWavelength = scaling.OriginalMaxPositions / scaling.LowFreqFactor;
        double highFreqWavelength = scaling.OriginalMaxPositions / scaling.HighFreqFactor;
        for (int i = 0; i < inverse.Length; i++)
        {
            double wavelength = 2 * Math.PI / inverse[i];
            if (wavelength > lowFreqWavelength)
            {
                inverse[i] /= scaling.Factor;                 // low frequency: interpolated
            }
            else if (wavelength >= highFreqWavelength)
            {
                double smooth = (scaling.OriginalMaxPositions / wavelength - scaling.LowFreqFactor)
                    / (scaling.HighFreqFactor - scaling.LowFreqFactor);
                inverse[i] = (1 - smooth) * inverse[i] / scaling.Factor + smooth * inverse[i]; // medium: blended
            }
            // high frequency: unchanged
        }
        return inverse;
    }

    internal void Validate()
    {
        if (Type is not (Linear or Llama3)) throw new ArgumentException($"rope_scaling type '{Type}' is not supported (only linear, llama3).");
        if (!(Factor > 0)) throw new ArgumentException($"rope_scaling factor must be > 0, got {Factor}.");
        if (Type == Llama3 && !(LowFreqFactor > 0 && HighFreqFactor > LowFreqFactor && OriginalMaxPositions > 0))
            throw new ArgumentException(
                $"rope_scaling llama3 needs 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings > 0, got {LowFreqFactor}, {HighFreqFactor}, {OriginalMaxPositions}.");
    }
}
