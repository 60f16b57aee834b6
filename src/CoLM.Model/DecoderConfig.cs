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
