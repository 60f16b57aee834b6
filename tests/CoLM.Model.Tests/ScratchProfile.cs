using System.Diagnostics;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace CoLM.Model.Tests;

public sealed class ScratchProfile(ITestOutputHelper output)
{
    [BenchmarkFact]
    public void Profile()
    {
        set_num_threads(1);
        var config = new DecoderConfig(VocabSize: 100, Dim: 128, Layers: 4, Heads: 4, HiddenDim: 344, MaxSeqLen: 64);
        using var model = new LlamaDecoder(config, new LoraSettings(16, 32, 0.05, LoraSettings.KnownTargets), seed: 1);
        var tail = typeof(LlamaDecoder).GetMethod("ForwardAfterLastMix", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!;
        foreach (long n in new long[] { 64, 169 })
        {
            using var scope = NewDisposeScope();
            using var ng = no_grad();
            model.eval();
            var residual = randn(n, 128);
            var mixed = randn(17, n, 128);
            var w = randn(344, 128);
            var x2 = randn(17 * n, 128);
            output.WriteLine($"N={n}: tail {T(() => (Tensor)tail.Invoke(model, [residual, mixed])!):F2} ms, " +
                $"one linear 128->344 on {17 * n} rows {T(() => F.linear(x2, w)):F2} ms, matmul {T(() => x2.matmul(w.t())):F2}, mm {T(() => mm(x2, w.t())):F2}");
        }
    }

    private static double T(Func<Tensor> f)
    {
        var times = new List<double>();
        for (int i = 0; i < 30; i++)
        {
            using var s = NewDisposeScope();
            var sw = Stopwatch.StartNew();
            f();
            times.Add(sw.Elapsed.TotalMilliseconds);
        }
        return times.Skip(5).Min();
    }
}
