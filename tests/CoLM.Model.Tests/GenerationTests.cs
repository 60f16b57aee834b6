using System.Diagnostics;
using CoLM.Model.Generation;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace CoLM.Model.Tests;

public sealed class GenerationTests(ITestOutputHelper output)
{
    private static readonly int[][] Prompts =
    [
        [1, 5, 9],
        [1, 17, 3, 30, 12, 8, 21],
        [1, 26, 4, 11, 2],
    ];

    /// <summary>A tiny model (LoRA dropout 0.1, off in eval mode) whose LoRA B matrices are all set to random nonzero values.</summary>
    private static LlamaDecoder TrainedModel(DecoderConfig config)
    {
        var model = new LlamaDecoder(config, Tiny.Lora(rank: 4, dropout: 0.1), seed: 11);
        using var generator = new TorchSharp.torch.Generator(5);
        using var noGrad = no_grad();
        foreach (var (name, parameter) in model.TrainableParameters())
        {
            if (!name.EndsWith("lora_B", StringComparison.Ordinal)) continue;
            using var values = normal(0.0, 0.2, parameter.shape, parameter.dtype, CPU, generator: generator);
            parameter.copy_(values);
        }
        return model;
    }

    /// <summary>Greedy decoding without a cache: the full forward over each row's growing sequence, argmax at the last position.</summary>
    private static int[][] Naive(LlamaDecoder model, IReadOnlyList<int[]> prompts, int maxNewTokens, int eosId)
    {
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var noGrad = no_grad();
            return prompts.Select(prompt =>
            {
                var sequence = prompt.Select(t => (long)t).ToList();
                var generated = new List<int>();
                for (int step = 0; step < maxNewTokens; step++)
                {
                    using var scope = NewDisposeScope();
                    var logits = model.forward(tensor(sequence.ToArray(), [1, sequence.Count]));
                    int next = (int)logits[0, -1].argmax().item<long>();
                    if (next == eosId) break;
                    generated.Add(next);
                    sequence.Add(next);
                }
                return generated.ToArray();
            }).ToArray();
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    [Theory]
    [InlineData(4)]
    [InlineData(2)]
    [InlineData(1)]
    public void Cached_generation_equals_naive_greedy_token_for_token(int kvHeads)
    {
        using var model = TrainedModel(Tiny.Config with { KvHeads = kvHeads });
        var expected = Naive(model, Prompts, maxNewTokens: 8, eosId: -1);
        foreach (var row in expected) output.WriteLine(string.Join(" ", row));
        var result = GreedyGenerator.Generate(model, Prompts, maxNewTokens: 8, eosId: -1, padId: 0);
        Assert.Equal(8, result.Steps);
        Assert.Equal(Prompts.Length, result.Tokens.Length);
        for (int b = 0; b < Prompts.Length; b++)
        {
            Assert.Equal(8, result.Tokens[b].Length);
            Assert.Equal(expected[b], result.Tokens[b]);
        }
    }

    [Fact]
    public void Left_padded_prompt_logits_match_each_row_alone()
    {
        using var model = TrainedModel(Tiny.Config with { KvHeads = 2 });
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        int longest = Prompts.Max(p => p.Length);
        var tokens = new long[Prompts.Length, longest];
        var positions = new long[Prompts.Length, longest];
        var attendable = new bool[Prompts.Length, longest];
        for (int b = 0; b < Prompts.Length; b++)
        {
            int pad = longest - Prompts[b].Length;
            for (int t = pad; t < longest; t++)
            {
                tokens[b, t] = Prompts[b][t - pad];
                positions[b, t] = t - pad;
                attendable[b, t] = true;
            }
        }
        using var cache = model.CreateKvCache(Prompts.Length, longest, CPU);
        var logits = model.ForwardWithCache(tensor(tokens), tensor(positions), tensor(attendable), cache);
        Assert.Equal(longest, cache.Length);
        for (int b = 0; b < Prompts.Length; b++)
        {
            int pad = longest - Prompts[b].Length;
            var alone = model.forward(tensor(Prompts[b].Select(t => (long)t).ToArray(), [1, Prompts[b].Length]))[0];
            var batched = logits[b].narrow(0, pad, Prompts[b].Length);
            Assert.True(alone.allclose(batched, rtol: 1e-4, atol: 1e-5), $"row {b}: max diff {(alone - batched).abs().max().item<float>()}");
        }
    }

    [Fact]
    public void A_row_stops_at_eos_and_the_others_continue()
    {
        using var model = TrainedModel(Tiny.Config with { KvHeads = 2 });
        var free = Naive(model, Prompts, maxNewTokens: 8, eosId: -1);
        int eos = free[0][2];
        var expected = Naive(model, Prompts, maxNewTokens: 8, eosId: eos);
        var result = GreedyGenerator.Generate(model, Prompts, maxNewTokens: 8, eosId: eos, padId: 0);

        Assert.Equal(Array.IndexOf(free[0], eos), result.Tokens[0].Length);
        Assert.True(result.Tokens[0].Length <= 2);
        Assert.DoesNotContain(eos, result.Tokens[0]);
        for (int b = 0; b < Prompts.Length; b++) Assert.Equal(expected[b], result.Tokens[b]);
        Assert.Contains(result.Tokens, row => row.Length > result.Tokens[0].Length);
    }

    [Fact]
    public void Generation_stops_early_once_every_row_has_stopped()
    {
        using var model = TrainedModel(Tiny.Config);
        var free = Naive(model, [Prompts[0]], maxNewTokens: 8, eosId: -1);
        int eos = free[0][0];
        var result = GreedyGenerator.Generate(model, [Prompts[0], Prompts[0]], maxNewTokens: 8, eosId: eos, padId: 0);
        Assert.Equal(1, result.Steps);
        Assert.All(result.Tokens, row => Assert.Empty(row));
    }

    [Fact]
    public void Exceeding_max_seq_len_is_refused()
    {
        using var model = Tiny.Model();
        int longest = Prompts.Max(p => p.Length);
        var ok = GreedyGenerator.Generate(model, Prompts, maxNewTokens: Tiny.Config.MaxSeqLen - longest, eosId: -1, padId: 0);
        Assert.Equal(Tiny.Config.MaxSeqLen - longest, ok.Steps);
        var error = Assert.Throws<ArgumentException>(
            () => GreedyGenerator.Generate(model, Prompts, maxNewTokens: Tiny.Config.MaxSeqLen - longest + 1, eosId: -1, padId: 0));
        Assert.Contains("MaxSeqLen", error.Message);
    }

    [Fact]
    public void The_model_mode_is_restored()
    {
        using var model = Tiny.Model();
        model.train();
        GreedyGenerator.Generate(model, Prompts, maxNewTokens: 2, eosId: -1, padId: 0);
        Assert.True(model.training);
        Assert.All(model.modules(), m => Assert.True(m.training));
        model.eval();
        GreedyGenerator.Generate(model, Prompts, maxNewTokens: 2, eosId: -1, padId: 0);
        Assert.False(model.training);
        model.train();
        Assert.Throws<ArgumentException>(() => GreedyGenerator.Generate(model, Prompts, maxNewTokens: 100, eosId: -1, padId: 0));
        Assert.True(model.training);
    }

    [BenchmarkFact]
    public void Timing_32_new_tokens_for_8_prompts_of_20_cached_vs_naive()
    {
        var config = new DecoderConfig(VocabSize: 100, Dim: 128, Layers: 4, Heads: 4, HiddenDim: 344, MaxSeqLen: 64);
        using var model = new LlamaDecoder(config, new LoraSettings(16, 32, 0.05, LoraSettings.KnownTargets), seed: 1);
        var random = new Random(1);
        var prompts = Enumerable.Range(0, 8).Select(_ => Enumerable.Range(0, 20).Select(_ => random.Next(100)).ToArray()).ToArray();
        foreach (int threads in new[] { 1, 2 })
        {
            set_num_threads(threads);
            GreedyGenerator.Generate(model, prompts, 32, eosId: -1, padId: 0); // warm-up
            var cachedWatch = Stopwatch.StartNew();
            var cached = GreedyGenerator.Generate(model, prompts, 32, eosId: -1, padId: 0);
            double cachedMs = cachedWatch.Elapsed.TotalMilliseconds;

            var naiveWatch = Stopwatch.StartNew();
            var naive = NaiveBatched(model, prompts, 32);
            double naiveMs = naiveWatch.Elapsed.TotalMilliseconds;
            output.WriteLine($"threads {threads}: cached {cachedMs:F1} ms, naive (batched full forward per step) {naiveMs:F1} ms");
            for (int b = 0; b < prompts.Length; b++) Assert.Equal(naive[b], cached.Tokens[b]);
        }
        set_num_threads(1);
    }

    /// <summary>Naive greedy for equal-length prompts, all rows in one full forward per step.</summary>
    private static int[][] NaiveBatched(LlamaDecoder model, int[][] prompts, int maxNewTokens)
    {
        model.eval();
        using var noGrad = no_grad();
        var sequences = prompts.Select(p => p.Select(t => (long)t).ToList()).ToArray();
        for (int step = 0; step < maxNewTokens; step++)
        {
            using var scope = NewDisposeScope();
            int length = sequences[0].Count;
            var logits = model.forward(tensor(sequences.SelectMany(s => s).ToArray(), [sequences.Length, length]));
            var next = logits.select(1, length - 1).argmax(-1).data<long>().ToArray();
            for (int b = 0; b < sequences.Length; b++) sequences[b].Add(next[b]);
        }
        return sequences.Select((s, b) => s.Skip(prompts[b].Length).Select(t => (int)t).ToArray()).ToArray();
    }
}
