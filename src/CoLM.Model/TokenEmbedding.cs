using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace CoLM.Model;

/// <summary>The token embedding of either architecture: a frozen (vocab, D) table looked up by token id.</summary>
internal sealed class TokenEmbedding : nn.Module
{
    [ComponentName(Name = "weight")] private Parameter _weight;

    public TokenEmbedding(Parameter weight) : base(nameof(TokenEmbedding))
    {
        _weight = weight;
        register_parameter("weight", _weight);
        RegisterComponents();
    }

    public Parameter Weight => _weight;

    public Tensor Forward(Tensor tokens) => // (B, T) -> (B, T, D)
        _weight.index_select(0, tokens.reshape(-1)).reshape(tokens.shape[0], tokens.shape[1], _weight.shape[1]);
}
