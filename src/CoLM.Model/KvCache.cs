using TorchSharp;
using static TorchSharp.torch;

namespace CoLM.Model;

/// <summary>
/// Keys and values of the positions a <see cref="CausalDecoder"/> has seen, for <see cref="CausalDecoder.ForwardWithCache"/>:
/// per layer (B, KvHeads, Capacity, HeadDim) after rotary (keys), preallocated; <see cref="Length"/> slots are filled.
/// A slot's absolute position is whatever the caller passed, so rows may be left-padded. The tensors belong to no
/// dispose scope; dispose the cache.
/// </summary>
public sealed class KvCache : IDisposable
{
    internal KvCache(int layers, long batch, long kvHeads, long capacity, long headDim, ScalarType dtype, Device device)
    {
        Batch = batch;
        Capacity = capacity;
        Keys = new Tensor[layers];
        Values = new Tensor[layers];
        for (int i = 0; i < layers; i++)
        {
            Keys[i] = zeros([batch, kvHeads, capacity, headDim], dtype, device).DetachFromDisposeScope();
            Values[i] = zeros([batch, kvHeads, capacity, headDim], dtype, device).DetachFromDisposeScope();
        }
        KeyMask = zeros([batch, capacity], @bool, device).DetachFromDisposeScope();
    }

    public long Batch { get; }

    public long Capacity { get; }

    /// <summary>Slots filled so far.</summary>
    public long Length { get; private set; }

    internal int Layers => Keys.Length;

    internal Tensor[] Keys { get; }   // per layer (B, KV, Capacity, hd), rotated

    internal Tensor[] Values { get; } // per layer (B, KV, Capacity, hd)

    internal Tensor KeyMask { get; }  // (B, Capacity) bool: whether later queries may attend to the slot

    internal void Advance(long count) => Length += count;

    public void Dispose()
    {
        foreach (var t in Keys) t.Dispose();
        foreach (var t in Values) t.Dispose();
        KeyMask.Dispose();
    }
}
