using System.Diagnostics;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace CoLM.Model.Tests;

/// <summary>A [Fact] that runs only when COLM_BENCH=1, so timing runs stay out of the normal test pass.</summary>
public sealed class BenchmarkFactAttribute : FactAttribute
{
    public BenchmarkFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("COLM_BENCH") != "1") Skip = "timing run; set COLM_BENCH=1";
    }
}

public sealed class Benchmarks(ITestOutputHelper output)
{
    [BenchmarkFact]
    public void Forward_backward_16_by_48_dim_128_four_layers_lora_16_on_all_targets()
    {
        foreach (int threads in new[] { 2, 1 })
        {
            set_num_threads(threads);
            output.WriteLine($"intra-op threads: {threads}, load average: {File.ReadAllText("/proc/loadavg").Trim()}");
            ForwardBackward();
        }
    }

    private void ForwardBackward()
    {
        var config = new DecoderConfig(VocabSize: 100, Dim: 128, Layers: 4, Heads: 4, HiddenDim: 344, MaxSeqLen: 64);
        using var model = new LlamaDecoder(config, new LoraSettings(16, 32, 0.05, LoraSettings.KnownTargets), seed: 1);
        var random = new Random(1);
        var rows = Enumerable.Range(0, 16).Select(_ => (Enumerable.Range(0, 49).Select(_ => random.Next(100)).ToArray(), 16)).ToList();
        using var batch = Collate.Build(rows, padId: 0, CPU);
        using var optimizer = optim.AdamW(model.TrainableParameters().Select(p => p.Parameter), 1e-3);
        model.train();

        var times = new List<double>();
        for (int i = 0; i < 12; i++)
        {
            var watch = Stopwatch.StartNew();
            using (var scope = NewDisposeScope())
            {
                optimizer.zero_grad();
                TokenLoss.PerExample(model.forward(batch.Inputs), batch.Targets, batch.Mask).mean().backward();
            }
            times.Add(watch.Elapsed.TotalMilliseconds);
        }
        output.WriteLine($"forward+backward 16x48: median {Median(times.Skip(2)):F1} ms (first {times[0]:F1} ms)");

        var sketchWatch = Stopwatch.StartNew();
        ZerothOrderSketch.Compute(model, batch, probeSeed: 1, probes: 16, epsilon: 1e-3);
        output.WriteLine($"zeroth-order sketch K=16: {sketchWatch.Elapsed.TotalMilliseconds:F1} ms");
        var referenceWatch = Stopwatch.StartNew();
        ZerothOrderSketch.ComputeReference(model, batch, probeSeed: 1, probes: 16, epsilon: 1e-3);
        output.WriteLine($"zeroth-order sketch K=16, reference: {referenceWatch.Elapsed.TotalMilliseconds:F1} ms");
        var exactWatch = Stopwatch.StartNew();
        ExactSketchGradient.Compute(model, batch);
        output.WriteLine($"exact sketch gradient: {exactWatch.Elapsed.TotalMilliseconds:F1} ms");
    }

    [BenchmarkFact]
    public void Zeroth_order_sketch_12_by_24_dim_128_four_layers_lora_16_eight_probes()
    {
        set_num_threads(1);
        output.WriteLine($"intra-op threads: 1, load average: {File.ReadAllText("/proc/loadavg").Trim()}");
        var config = new DecoderConfig(VocabSize: 100, Dim: 128, Layers: 4, Heads: 4, HiddenDim: 344, MaxSeqLen: 64);
        using var model = new LlamaDecoder(config, new LoraSettings(16, 32, 0.05, LoraSettings.KnownTargets), seed: 1);
        var random = new Random(2);
        // Synthetic-mixture-like rows ("add 12 34 =" then a short answer): 18..25 tokens, 2..6 answer tokens + EOS;
        // then the same lengths with the prompt a third of the row (many more target positions).
        var lengths = Enumerable.Range(0, 12).Select(_ => random.Next(18, 26)).ToArray();
        var shortAnswers = lengths.Select(n => (Enumerable.Range(0, n).Select(_ => random.Next(4, 100)).ToArray(), n - random.Next(3, 8))).ToList();
        var longAnswers = shortAnswers.Select(r => (r.Item1, r.Item1.Length / 3)).ToList();
        foreach (var (name, rows) in new[] { ("short answers", shortAnswers), ("answer = last 2/3", longAnswers) })
        {
            using var batch = Collate.Build(rows, padId: 0, CPU);
            using (var scope = NewDisposeScope()) Tiny.Train(model, batch, steps: 1);
            double targets = batch.Mask.sum().item<float>();
            var reference = Time(() => ZerothOrderSketch.ComputeReference(model, batch, probeSeed: 3, probes: 8, epsilon: 1e-3));
            var fast = Time(() => ZerothOrderSketch.Compute(model, batch, probeSeed: 3, probes: 8, epsilon: 1e-3));
            var trunk = Time(() =>
            {
                using var scope = NewDisposeScope();
                using var noGrad = no_grad();
                model.eval();
                model.ForwardTrunk(batch.Inputs);
            });
            output.WriteLine($"{name}: {batch.Size}x{batch.Length}, {targets} target positions, median (min) ms: " +
                $"reference {reference.Median:F1} ({reference.Min:F1}), fast {fast.Median:F1} ({fast.Min:F1}), " +
                $"{reference.Median / fast.Median:F1}x; trunk forward alone {trunk.Median:F1} ({trunk.Min:F1})");
        }
    }

    private static (double Median, double Min) Time(Action action, int warmup = 3, int repeats = 21)
    {
        var times = new List<double>();
        for (int i = 0; i < warmup + repeats; i++)
        {
            var watch = Stopwatch.StartNew();
            action();
            if (i >= warmup) times.Add(watch.Elapsed.TotalMilliseconds);
        }
        return (Median(times), times.Min());
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted[sorted.Length / 2];
    }
}
