using System.Text;
using static TorchSharp.torch;

namespace CoLM.Training;

/// <summary>
/// The replica state that is not a function of config and seed: trainable (LoRA) weights,
/// AdamW state and the completed step count. Base weights are regenerated from the seed, so a
/// checkpoint holds only what training changed. Layout: magic, step, then per tensor its name,
/// shape and raw little-endian floats, then the optimizer's own serialisation.
/// </summary>
public static class ReplicaState
{
    private const string Magic = "COLM-REPLICA-1";

    public static byte[] Write(TrainerReplica replica)
    {
        using var stream = new MemoryStream();
        using (var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Magic);
            w.Write(replica.CompletedSteps);
            var trainable = replica.Trainable;
            w.Write(trainable.Count);
            foreach (var (name, p) in trainable)
            {
                w.Write(name);
                w.Write(p.shape.Length);
                foreach (var d in p.shape) w.Write(d);
                w.Write(p.bytes);
            }
            replica.Optimizer.save_state_dict(w);
        }
        return stream.ToArray();
    }

    /// <summary>Loads <paramref name="state"/>; a state for another model shape is refused by tensor name and shape.</summary>
    public static void Read(TrainerReplica replica, byte[] state, string origin)
    {
        try
        {
            using var r = new BinaryReader(new MemoryStream(state), Encoding.UTF8);
            if (r.ReadString() != Magic) throw new CheckpointMismatchException(origin, "not a CoLM replica state (bad magic)");
            long step = r.ReadInt64();
            var trainable = replica.Trainable;
            int count = r.ReadInt32();
            if (count != trainable.Count)
                throw new CheckpointMismatchException(origin, $"holds {count} trainable tensors, this model has {trainable.Count} (different LoRA targets or layer count)");
            var values = new List<byte[]>(count);
            foreach (var (name, p) in trainable)
            {
                string stored = r.ReadString();
                var shape = new long[r.ReadInt32()];
                for (int i = 0; i < shape.Length; i++) shape[i] = r.ReadInt64();
                if (stored != name || !shape.SequenceEqual(p.shape))
                    throw new CheckpointMismatchException(origin,
                        $"tensor {stored} [{string.Join(",", shape)}] does not match this model's {name} [{string.Join(",", p.shape)}]: written for a different model shape");
                values.Add(r.ReadBytes(p.bytes.Length));
            }
            // Validated everything before touching the live weights.
            using (no_grad())
            {
                for (int i = 0; i < count; i++) values[i].AsSpan().CopyTo(trainable[i].Parameter.bytes);
            }
            replica.Optimizer.load_state_dict(r);
            replica.SetCompletedSteps(step);
        }
        catch (EndOfStreamException)
        {
            throw new CheckpointMismatchException(origin, "truncated replica state");
        }
    }
}

/// <summary>A checkpoint or peer state that cannot be loaded into this model; the message says why.</summary>
public sealed class CheckpointMismatchException(string origin, string problem) : Exception($"{origin}: {problem}");
