using CoLM.Data;
using CoLM.Model;
using CoLM.Model.Hf;
using CoLM.Model.Peft;

namespace CoLM.System.Tests;

/// <summary>`colm eval` through the real program, on a tiny Hugging Face folder it makes.</summary>
public sealed class EvalCommandTests : IDisposable
{
    private readonly TinyRun _tiny = new();

    public void Dispose() => _tiny.Dispose();

    [Fact]
    public async Task Eval_generates_an_answer_per_example_scores_per_source_and_writes_predictions()
    {
        var config = new DecoderConfig(CharTokenizer.Instance.VocabSize, Dim: 32, Layers: 2, Heads: 4, HiddenDim: 64, MaxSeqLen: 256);
        var lora = new LoraSettings(4, 8, 0, ["q_proj", "v_proj"]);
        string modelDir = Path.Combine(_tiny.Root, "base"), adapterDir = Path.Combine(_tiny.Root, "adapter");
        using (var model = new LlamaDecoder(config, lora, seed: 9))
        {
            HfModelSaver.SaveMerged(model, modelDir);
            PeftAdapter.Export(model, adapterDir);
        }
        var data = Path.Combine(_tiny.Root, "math.jsonl");
        File.WriteAllLines(data, Enumerable.Range(0, 10).Select(i =>
            $"{{\"source\":\"{(i < 6 ? "add" : "sub")}\",\"instruction\":\"{i} plus one\",\"output\":\"{i + 1}\"}}"));
        string outDir = Path.Combine(_tiny.Root, "eval");

        var o = await ColmProcess.RunAsync(_tiny.Root, "eval", "--model", modelDir, "--adapter", adapterDir, "--data", data,
            "--set", "colm.model.tokenizer=char", "--max-new-tokens", "6", "--out", outDir);

        Assert.True(o.ExitCode == 0, o.Stderr);
        var predictions = File.ReadAllLines(Path.Combine(outDir, "predictions.jsonl"));
        Assert.Equal(10, predictions.Length);
        Assert.All(predictions, p => Assert.Contains("\"generated\":", p));
        Assert.Contains("math.jsonl:7", predictions[6]);
        var table = File.ReadAllText(Path.Combine(outDir, "eval.md"));
        Assert.Contains("| add | 6 |", table);
        Assert.Contains("| sub | 4 |", table);
    }

    [Fact]
    public async Task Eval_without_a_model_folder_is_a_usage_error()
    {
        // Without --model, eval reads the shipped pretrained base; with the seeded decoder there is no folder to evaluate.
        var o = await ColmProcess.RunAsync(_tiny.Root, "eval", "--data", "x.jsonl", "--set", "colm.model.base=random");
        Assert.Equal(2, o.ExitCode);
        Assert.Contains("--model", o.Stderr);
    }
}
