using CoLM.Model;
using TorchSharp;

namespace CoLM.Training;

/// <summary>LoRA weights copied at one step (<see cref="TrainerReplica.SnapshotAdapter"/>), written as a PEFT adapter later, from any thread.</summary>
public sealed class AdapterSnapshot(LoraSettings lora, (string Name, torch.Tensor Tensor)[] tensors, string? baseModel) : IDisposable
{
    public void Write(string directory) => Model.Peft.PeftAdapter.Export(lora, tensors, directory, baseModel);

    public void Dispose()
    {
        foreach (var (_, tensor) in tensors) tensor.Dispose();
    }
}
