using CoLM.Determinism;
using CoLM.Selection;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CoLM.Model;

/// <summary>
/// Deterministic initial values. Each tensor draws from its own generator, seeded by the model
/// seed and the tensor's name, so a tensor's values never depend on which other tensors exist
/// (changing the LoRA targets leaves the base weights alone) or on creation order.
/// Tensors are made on the CPU (libtorch's CPU generator is serial, so bit-identical in every
/// process and at every thread count) and are detached from any dispose scope the caller has open.
/// </summary>
internal sealed class ParameterFactory(long seed)
{
    /// <summary>The model's own dropout generator, handed to every adapter the factory builds.</summary>
    public DropoutSource Dropout { get; } = new();

    public Parameter Normal(string name, long[] shape, double std)
    {
        using var generator = GeneratorFor(name);
        return Frozen(normal(0.0, std, shape, float32, CPU, generator: generator));
    }

    public static Parameter Ones(long[] shape) => Frozen(ones(shape, float32, CPU));

    /// <summary>LoRA A: Kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in)), as PEFT does.</summary>
    public Parameter LoraA(string name, long rank, long inFeatures)
    {
        double bound = 1.0 / Math.Sqrt(inFeatures);
        using var generator = GeneratorFor(name);
        using var unit = rand([rank, inFeatures], float32, CPU, generator: generator);
        using var scaled = unit.mul(2.0 * bound);
        return Trainable(scaled.sub(bound));
    }

    /// <summary>LoRA B starts at zero, so the adapted model equals the base model at step 0.</summary>
    public static Parameter LoraB(long outFeatures, long rank) => Trainable(zeros([outFeatures, rank], float32, CPU));

    private static Parameter Frozen(Tensor values) => Detached(new Parameter(values, requires_grad: false));

    private static Parameter Trainable(Tensor values) => Detached(new Parameter(values, requires_grad: true));

    private static Parameter Detached(Parameter parameter)
    {
        parameter.DetachFromDisposeScope();
        return parameter;
    }

    private torch.Generator GeneratorFor(string name)
    {
        return new torch.Generator(RandomStreams.Parameter(seed, name));
    }
}
