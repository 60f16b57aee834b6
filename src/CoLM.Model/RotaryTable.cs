using TorchSharp;
using static TorchSharp.torch;

namespace CoLM.Model;

/// <summary>
/// Rotary position tables in the Hugging Face "rotate half" layout: cos/sin of shape (MaxSeqLen, headDim),
/// angle(t, i) = t * theta^(-2i/headDim) (scaled by a RopeScaling if given) repeated for both halves. Computed once in double precision
/// in C# (identical on every device), copied per device and dtype on first use.
/// Not registered as buffers: they are derived from the config, not state.
/// </summary>
internal sealed class RotaryTable : IDisposable
{
    private readonly float[] _cos;
    private readonly float[] _sin;
    private readonly long _maxLen;
    private readonly long _headDim;
    private (Device Device, ScalarType Dtype, Tensor Cos, Tensor Sin)? _cached;

    public RotaryTable(int maxLen, int headDim, double theta, RopeScaling? scaling = null)
    {
        _maxLen = maxLen;
        _headDim = headDim;
        _cos = new float[maxLen * headDim];
        _sin = new float[maxLen * headDim];
        int half = headDim / 2;
        var inverse = RopeScaling.InverseFrequencies(headDim, theta, scaling);
        for (int t = 0; t < maxLen; t++)
        {
            for (int i = 0; i < half; i++)
            {
                double angle = t * inverse[i];
                float c = (float)Math.Cos(angle), s = (float)Math.Sin(angle);
                _cos[t * headDim + i] = _cos[t * headDim + half + i] = c;
                _sin[t * headDim + i] = _sin[t * headDim + half + i] = s;
            }
        }
    }

    /// <summary>Views (T, headDim) on the table for this device and dtype; the views belong to the caller's scope.</summary>
    public (Tensor Cos, Tensor Sin) For(Device device, ScalarType dtype, long length)
    {
        if (_cached is not { } c || c.Device.type != device.type || c.Device.index != device.index || c.Dtype != dtype)
        {
            DisposeCached();
            using var cosCpu = tensor(_cos, [_maxLen, _headDim]);
            using var sinCpu = tensor(_sin, [_maxLen, _headDim]);
            var cos = cosCpu.to(dtype, device).DetachFromDisposeScope();
            var sin = sinCpu.to(dtype, device).DetachFromDisposeScope();
            _cached = c = (device, dtype, cos, sin);
        }
        return (c.Cos.narrow(0, 0, length), c.Sin.narrow(0, 0, length));
    }

    public void Dispose() => DisposeCached();

    private void DisposeCached()
    {
        if (_cached is { } c)
        {
            c.Cos.Dispose();
            c.Sin.Dispose();
            _cached = null;
        }
    }

    /// <summary>x (B, H, T, hd) rotated by position: x * cos + rotate_half(x) * sin.</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        long half = x.shape[^1] / 2;
        var rotated = cat([x.narrow(-1, half, half).neg(), x.narrow(-1, 0, half)], -1);
        return x * cos + rotated * sin;
    }
}
