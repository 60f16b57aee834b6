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

    // The rate and its rescale as Scalars kept reachable for the native calls (HeldScalars); one rate per model.
    private double _rate = double.NaN;
    private Scalar? _heldRate, _heldRescale;

    public Tensor Apply(Tensor x, double p)
    {
        if (p != _rate)
        {
            _heldRate?.Dispose();
            _heldRescale?.Dispose();
            (_rate, _heldRate, _heldRescale) = (p, p.ToScalar(), (1.0 / (1.0 - p)).ToScalar());
        }
        using var keep = rand(x.shape, x.dtype, x.device, generator: Generator).ge_(_heldRate!);
        return x * keep * _heldRescale!;
    }

    public void Dispose()
    {
        Generator.Dispose();
        _heldRate?.Dispose();
        _heldRescale?.Dispose();
    }
}
