using TorchSharp;

namespace CoLM.Model.SafeTensors;

/// <summary>Called with one piece of a tensor's storage and that piece's byte offset within the tensor.</summary>
internal delegate void ChunkAction(Span<byte> chunk, long byteOffset);

/// <summary>
/// Visits the storage of a contiguous CPU tensor in pieces of at most <see cref="ChunkBytes"/> bytes,
/// so tensors larger than a span can hold are still copied without an intermediate managed array.
/// </summary>
internal static class TensorChunks
{
    /// <summary>Largest piece handed to the action (the span over a narrowed 1-D view).</summary>
    public const long ChunkBytes = 8L << 20;

    public static void ForEach(torch.Tensor contiguousCpu, ChunkAction action)
    {
        long count = contiguousCpu.numel();
        if (count == 0) return;
        long elementSize = contiguousCpu.ElementSize;
        long chunkElements = Math.Max(1, ChunkBytes / elementSize);
        if (count <= chunkElements)
        {
            action(contiguousCpu.bytes, 0);
            return;
        }
        using var flat = contiguousCpu.view(-1);
        for (long start = 0; start < count; start += chunkElements)
        {
            long length = Math.Min(chunkElements, count - start);
            using var part = flat.narrow(0, start, length);
            action(part.bytes, start * elementSize);
        }
    }
}
