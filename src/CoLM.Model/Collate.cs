using static TorchSharp.torch;

namespace CoLM.Model;

/// <summary>
/// A next-token-prediction batch: Inputs and Targets (B, T) int64, Mask (B, T) float32 0/1 marking the
/// target positions that count in the loss. Owns its tensors: dispose it when the step is done.
/// </summary>
public sealed record TokenBatch(Tensor Inputs, Tensor Targets, Tensor Mask) : IDisposable
{
    public int Size => (int)Inputs.shape[0];

    public int Length => (int)Inputs.shape[1];

    public void Dispose()
    {
        Inputs.Dispose();
        Targets.Dispose();
        Mask.Dispose();
    }
}

public static class Collate
{
    /// <summary>
    /// Inputs = tokens[:-1], targets = tokens[1:], right-padded with <paramref name="padId"/> to the
    /// longest row. Mask = 1 where the target position t satisfies t >= promptLength - 1 (the token being
    /// predicted, tokens[t + 1], belongs to the response or is the EOS) and t is not padding.
    /// Right padding plus causal attention means padding never changes a real position's logits.
    /// </summary>
    public static TokenBatch Build(IReadOnlyList<(int[] Tokens, int PromptLength)> rows, int padId, Device device)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Count == 0) throw new ArgumentException("Cannot collate an empty batch.", nameof(rows));
        int length = 0;
        for (int r = 0; r < rows.Count; r++)
        {
            if (rows[r].Tokens is not { Length: >= 2 })
                throw new ArgumentException($"Row {r} has fewer than 2 tokens; nothing to predict.", nameof(rows));
            length = Math.Max(length, rows[r].Tokens.Length - 1);
        }

        var inputs = new long[rows.Count * length];
        var targets = new long[rows.Count * length];
        var mask = new float[rows.Count * length];
        Array.Fill(inputs, padId);
        Array.Fill(targets, padId);
        for (int r = 0; r < rows.Count; r++)
        {
            var (tokens, promptLength) = rows[r];
            int offset = r * length;
            for (int t = 0; t < tokens.Length - 1; t++)
            {
                inputs[offset + t] = tokens[t];
                targets[offset + t] = tokens[t + 1];
                mask[offset + t] = t >= promptLength - 1 ? 1f : 0f;
            }
        }

        using var scope = NewDisposeScope();
        long[] shape = [rows.Count, length];
        return new TokenBatch(
            tensor(inputs, shape, int64, device).MoveToOuterDisposeScope(),
            tensor(targets, shape, int64, device).MoveToOuterDisposeScope(),
            tensor(mask, shape, float32, device).MoveToOuterDisposeScope());
    }
}
