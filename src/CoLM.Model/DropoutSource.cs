using TorchSharp;
using static TorchSharp.torch;

namespace CoLM.Model;

/// <summary>
/// Dropout masks drawn from a generator owned by one model, not libtorch's global one: several
/// replicas train on different threads of one process, and a shared generator would make their
/// masks depend on thread timing. Seeded per step by the trainer, so a resumed run replays them.
/// </summary>
internal sealed class DropoutSource : IDisposable
{
    public torch.Generator Generator { get; } = new(0, CPU);

    public void Seed(long seed) => Generator.manual_seed(seed);

    public Tensor Apply(Tensor x, double p)
    {
        using var keep = rand(x.shape, x.dtype, x.device, generator: Generator).ge_(p);
        return x * keep * (1.0 / (1.0 - p));
    }

    public void Dispose() => Generator.Dispose();
}
