using TorchSharp;
using static TorchSharp.torch;

namespace CoLM.Model.Tests;

/// <summary>Tiny models and batches shared by the tests.</summary>
internal static class Tiny
{
    // One intra-op thread: these tensors are far too small to split, and on a busy 2-core machine
    // OpenMP's spin-waits made a tiny head forward 5x slower at 2 threads than at 1 (measured).
    static Tiny() => set_num_threads(1);

    public static readonly DecoderConfig Config = new(VocabSize: 32, Dim: 32, Layers: 2, Heads: 4, HiddenDim: 64, MaxSeqLen: 16);

    public static LoraSettings Lora(int rank = 4, double dropout = 0.0, params string[] targets) =>
        new(rank, Alpha: 2.0 * rank, dropout, targets.Length == 0 ? LoraSettings.KnownTargets : targets);

    public static LlamaDecoder Model(long seed = 7, LoraSettings? lora = null) => new(Config, lora ?? Lora(), seed);

    /// <summary>Deterministic pseudo-random token rows of the given lengths, prompt = first third.</summary>
    public static List<(int[] Tokens, int PromptLength)> Rows(long seed, params int[] lengths)
    {
        var random = new Random((int)seed);
        return lengths.Select(n => (Enumerable.Range(0, n).Select(_ => random.Next(1, Config.VocabSize)).ToArray(), Math.Max(1, n / 3)))
            .ToList();
    }

    public static TokenBatch Batch(long seed, params int[] lengths) => Collate.Build(Rows(seed, lengths), padId: 0, CPU);

    /// <summary>A few AdamW steps on the batch's mean loss, so that every LoRA B is nonzero.</summary>
    public static void Train(CausalDecoder model, TokenBatch batch, int steps, double lr = 1e-2)
    {
        using var optimizer = optim.AdamW(model.TrainableParameters().Select(p => p.Parameter), lr);
        for (int i = 0; i < steps; i++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            TokenLoss.PerExample(model.forward(batch.Inputs), batch.Targets, batch.Mask).mean().backward();
            optimizer.step();
        }
    }

    public static float[] Values(Tensor t) => t.detach().contiguous().to_type(float32).data<float>().ToArray();

    public static double Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            dot += (double)a[i] * b[i];
            na += (double)a[i] * a[i];
            nb += (double)b[i] * b[i];
        }
        return dot / Math.Sqrt(na * nb);
    }
}
