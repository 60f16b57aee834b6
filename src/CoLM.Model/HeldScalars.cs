using TorchSharp;

namespace CoLM.Model;

/// <summary>
/// Scalars kept reachable for as long as a native call may read them. TorchSharp turns a number
/// passed to a tensor operation (x * 0.5, x.ne(0)) into a Scalar that owns a native handle and has
/// a finalizer; once its handle is read nothing refers to it, so a garbage collection during the
/// native call may free it while libtorch reads it. We saw that once in a quality benchmark:
/// "Unknown scalar type" from mul_Scalar in a LoRA forward, the trainer restarted. Hot paths hold
/// their constants here or in fields instead of converting a number on every call.
/// </summary>
public static class HeldScalars
{
    public static readonly Scalar Zero = 0.ToScalar();
    public static readonly Scalar One = 1.0.ToScalar();
}
