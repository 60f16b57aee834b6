using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace CoLM.Model;

internal static class TensorCopy
{
    /// <summary>Copies a tensor's values, row-major, into a new float[] through its raw bytes (much faster than data&lt;float&gt;()).</summary>
    public static float[] ToFloatArray(Tensor source)
    {
        using var scope = NewDisposeScope();
        var host = source.detach().to_type(float32).cpu().contiguous();
        return MemoryMarshal.Cast<byte, float>(host.bytes).ToArray();
    }
}
