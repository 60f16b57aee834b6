using static TorchSharp.torch;

namespace CoLM.Model.Generation;

/// <summary>
/// Generated ids per row, without the prompt, stopping at (and excluding) EOS; <see cref="Steps"/> is the number of
/// tokens chosen per row before every row stopped or the budget ran out (at most maxNewTokens).
/// </summary>
public sealed record GenerationResult(int[][] Tokens, int Steps);

/// <summary>
/// Greedy decoding with a KV cache, for evaluation.
///
/// Prompts of different lengths are left-padded to the longest (L) with padId: the pad slots are marked not attendable
/// in the cache and each row's positions count from its first real token, so every row sees exactly what it would see
/// alone (up to rounding). One forward over the padded prompts fills the cache; then each step feeds the B chosen tokens
/// (row b at position promptLength_b + step) and attends to the cache. Rows that have stopped keep being fed (their
/// outputs are ignored) so that the batch stays rectangular.
/// </summary>
public static class GreedyGenerator
{
    /// <summary>
    /// Greedy continuation of each prompt (token ids, BOS included) by up to <paramref name="maxNewTokens"/> tokens;
    /// a row stops at <paramref name="eosId"/>, and generation stops once every row has. Runs in eval mode under
    /// no_grad and restores the model's training mode. The longest prompt plus maxNewTokens must not exceed MaxSeqLen.
    /// </summary>
    public static GenerationResult Generate(CausalDecoder model, IReadOnlyList<int[]> prompts, int maxNewTokens, int eosId, int padId)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(prompts);
        if (prompts.Count == 0) throw new ArgumentException("No prompts given.");
        if (maxNewTokens < 0) throw new ArgumentException($"maxNewTokens must be >= 0, got {maxNewTokens}.");
        if (padId < 0 || padId >= model.VocabSize) throw new ArgumentException($"padId {padId} is outside the vocabulary [0, {model.VocabSize}).");
        for (int b = 0; b < prompts.Count; b++)
        {
            var prompt = prompts[b] ?? throw new ArgumentException($"Prompt {b} is null.");
            if (prompt.Length == 0) throw new ArgumentException($"Prompt {b} is empty.");
            foreach (int id in prompt)
            {
                if (id < 0 || id >= model.VocabSize)
                    throw new ArgumentException($"Prompt {b} holds token {id}, outside the vocabulary [0, {model.VocabSize}).");
            }
        }
        int batch = prompts.Count;
        int longest = prompts.Max(p => p.Length);
        if (longest + maxNewTokens > model.MaxSeqLen)
            throw new ArgumentException(
                $"The longest prompt ({longest} tokens) plus maxNewTokens ({maxNewTokens}) exceeds the model's MaxSeqLen ({model.MaxSeqLen}).");

        var generated = Enumerable.Range(0, batch).Select(_ => new List<int>()).ToArray();
        if (maxNewTokens == 0) return new GenerationResult(generated.Select(g => g.ToArray()).ToArray(), 0);

        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var noGrad = no_grad();
            var device = model.parameters().First().device;
            using var cache = model.CreateKvCache(batch, longest + maxNewTokens - 1, device);

            // Prompt pass: left-padded (B, L) tokens, positions from each row's first real token, pad slots not attendable.
            var tokens = new long[batch * longest];
            var positions = new long[batch * longest];
            var attendable = new bool[batch * longest];
            for (int b = 0; b < batch; b++)
            {
                int pad = longest - prompts[b].Length;
                for (int t = 0; t < longest; t++)
                {
                    bool real = t >= pad;
                    tokens[b * longest + t] = real ? prompts[b][t - pad] : padId;
                    positions[b * longest + t] = real ? t - pad : 0;
                    attendable[b * longest + t] = real;
                }
            }
            long[] next;
            using (var scope = NewDisposeScope())
            {
                var logits = model.ForwardWithCache(
                    tensor(tokens, [batch, longest]).to(device),
                    tensor(positions, [batch, longest]).to(device),
                    tensor(attendable, [batch, longest]).to(device),
                    cache);
                next = LastArgmax(logits);
            }

            var stopped = new bool[batch];
            int steps = 0;
            while (true)
            {
                steps++;
                for (int b = 0; b < batch; b++)
                {
                    if (stopped[b]) continue;
                    if (next[b] == eosId) stopped[b] = true;
                    else generated[b].Add((int)next[b]);
                }
                if (steps == maxNewTokens || stopped.All(s => s)) break;

                var stepPositions = new long[batch];
                for (int b = 0; b < batch; b++) stepPositions[b] = prompts[b].Length + steps - 1;
                using var scope = NewDisposeScope();
                var logits = model.ForwardWithCache(
                    tensor(next, [batch, 1]).to(device),
                    tensor(stepPositions, [batch, 1]).to(device),
                    ones([batch, 1], ScalarType.Bool, device),
                    cache);
                next = LastArgmax(logits);
            }
            return new GenerationResult(generated.Select(g => g.ToArray()).ToArray(), steps);
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    /// <summary>Argmax over the vocabulary at the last position of (B, T, V) logits, as B ids on the CPU.</summary>
    private static long[] LastArgmax(Tensor logits) =>
        logits.select(1, logits.shape[1] - 1).argmax(-1).cpu().data<long>().ToArray();
}
