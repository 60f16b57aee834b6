using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace CoLM.Model;

/// <summary>What the last block's v_proj saw and produced, for per-example gradients (see ExactSketchGradient).</summary>
internal sealed class LoraTap
{
    public Tensor? LoraHidden { get; set; } // A(x): (B, T, r)
    public Tensor? Output { get; set; }     // W x + s B(A x): (B, T, out)
}

/// <summary>
/// Linear layer with a frozen weight, an optional frozen bias and an optional LoRA adapter:
/// y = W x + b + s * B(A(dropout(x))). W and b may be held in a half-precision compute dtype while A and B stay
/// fp32: the adapter then runs in fp32 on x cast up and its output is cast down to W's dtype before the sum
/// (the cast at the LoRA boundary, as PEFT does), so gradients and optimizer state of A and B are fp32.
/// </summary>
internal sealed class LoraLinear : nn.Module
{
    [ComponentName(Name = "weight")] private Parameter _weight; // (out, in), frozen
    [ComponentName(Name = "bias")] private Parameter? _bias;    // (out), frozen; Phi only
    [ComponentName(Name = "lora_A")] private Parameter? _loraA; // (r, in)
    [ComponentName(Name = "lora_B")] private Parameter? _loraB; // (out, r)
    private readonly double _scale;
    private readonly Scalar? _heldScale; // _scale, kept reachable for native calls (HeldScalars)
    private readonly double _dropout;
    private readonly DropoutSource _dropoutSource;
    private Tensor? _folded; // W + s B A while folded, (out, in), in W's dtype; see Fold

    /// <summary>The frozen weight W, (out, in).</summary>
    public Parameter Weight => _weight;

    /// <summary>A bias-free projection whose weight is drawn from <paramref name="init"/> (the built-in decoder).</summary>
    public LoraLinear(string name, long inFeatures, long outFeatures, double std, LoraSettings? lora, ParameterFactory init)
        : this(name, init.Normal($"{name}.weight", [outFeatures, inFeatures], std), bias: null, lora, init)
    {
    }

    /// <summary>A projection over given frozen weights (a checkpoint's); the adapter's A is drawn from <paramref name="init"/>.</summary>
    public LoraLinear(string name, Parameter weight, Parameter? bias, LoraSettings? lora, ParameterFactory init)
        : base(nameof(LoraLinear))
    {
        _dropoutSource = init.Dropout;
        _weight = weight;
        _bias = bias;
        register_parameter("weight", _weight);
        if (_bias is not null) register_parameter("bias", _bias);
        if (lora is not null)
        {
            _loraA = init.LoraA($"{name}.lora_A", lora.Rank, weight.shape[1]);
            _loraB = ParameterFactory.LoraB(weight.shape[0], lora.Rank);
            register_parameter("lora_A", _loraA);
            register_parameter("lora_B", _loraB);
            _scale = lora.Scale;
            _heldScale = _scale.ToScalar();
            _dropout = lora.Dropout;
        }
        RegisterComponents();
    }

    public Parameter? LoraB => _loraB;

    public double Scale => _scale;

    public bool HasAdapter => _loraA is not null && _loraB is not null;

    public Tensor Forward(Tensor x, LoraTap? tap = null)
    {
        if (_folded is not null) return ForwardFolded(x, tap);
        var y = F.linear(x, _weight, _bias);
        if (_loraA is null || _loraB is null) return y;
        var dropped = _dropout > 0 && training ? _dropoutSource.Apply(x, _dropout) : x;
        if (dropped.dtype != _loraA.dtype) dropped = dropped.to_type(_loraA.dtype);
        var hidden = F.linear(dropped, _loraA);          // (..., r), in the adapter's dtype
        var update = F.linear(hidden, _loraB) * _heldScale!;  // (..., out)
        var adapted = y + (update.dtype == y.dtype ? update : update.to_type(y.dtype));
        if (tap is not null)
        {
            tap.LoraHidden = hidden;
            tap.Output = adapted;
        }
        return adapted;
    }

    /// <summary>Replaces the frozen weight and bias by copies in <paramref name="dtype"/>; the adapter is left alone.</summary>
    public void CastWeight(ScalarType dtype)
    {
        if (_weight.dtype == dtype) return;
        Unfold();
        _weight = Recast(_weight, "weight", dtype);
        if (_bias is not null) _bias = Recast(_bias, "bias", dtype);
    }

    private Parameter Recast(Parameter old, string name, ScalarType dtype)
    {
        using var noGrad = no_grad();
        var cast = new Parameter(old.to_type(dtype), requires_grad: false);
        cast.DetachFromDisposeScope();
        ConditionallyRegisterParameter(name, cast);
        old.Dispose();
        return cast;
    }

    /// <summary>
    /// Until <see cref="Unfold"/>, Forward computes W' x + b with the adapter folded into one weight, W' = W + s B A
    /// (summed in fp32, stored in W's dtype): one matmul instead of three and two elementwise passes. The same
    /// function up to rounding, without dropout, so only for no-grad, eval-mode passes (Forward refuses others);
    /// A and B must not change meanwhile.
    /// </summary>
    public void Fold()
    {
        if (_loraA is null || _loraB is null || _folded is not null) return;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var weight = _weight.dtype == _loraA.dtype ? _weight : _weight.to_type(_loraA.dtype);
        var folded = weight.addmm(_loraB, _loraA, beta: 1, alpha: (float)_scale); // (out, in)
        _folded = (folded.dtype == _weight.dtype ? folded : folded.to_type(_weight.dtype)).DetachFromDisposeScope();
    }

    public void Unfold()
    {
        _folded?.Dispose();
        _folded = null;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Unfold();
            _heldScale?.Dispose();
        }
        base.Dispose(disposing);
    }

    private Tensor ForwardFolded(Tensor x, LoraTap? tap)
    {
        if (training || is_grad_enabled())
            throw new InvalidOperationException("A folded LoRA adapter is for no-grad, eval-mode passes only; unfold it first.");
        var y = F.linear(x, _folded!, _bias);
        if (tap is not null)
        {
            tap.LoraHidden = F.linear(x.dtype == _loraA!.dtype ? x : x.to_type(_loraA.dtype), _loraA); // (..., r)
            tap.Output = y;
        }
        return y;
    }
}
