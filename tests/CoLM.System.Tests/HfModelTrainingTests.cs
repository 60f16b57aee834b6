using CoLM.Data;
using CoLM.Model;
using CoLM.Model.Hf;

namespace CoLM.System.Tests;

/// <summary>`colm train --model HF_FOLDER --data FILE.jsonl` through the real program.</summary>
public sealed class HfModelTrainingTests : IDisposable
{
    private readonly TinyRun _tiny = new();

    public void Dispose() => _tiny.Dispose();

    private string SaveTinyHfModel()
    {
        // A Hugging Face folder whose vocabulary covers the character tokenizer.
        var config = new DecoderConfig(CharTokenizer.Instance.VocabSize, Dim: 32, Layers: 2, Heads: 4, HiddenDim: 64, MaxSeqLen: 256) { KvHeads = 2 };
        using var model = new LlamaDecoder(config, new LoraSettings(4, 8, 0, ["v_proj"]), seed: 5);
        var dir = Path.Combine(_tiny.Root, "tiny-llama");
        HfModelSaver.SaveMerged(model, dir);
        return dir;
    }

    private string WriteMathJsonl()
    {
        var lines = new List<string>();
        for (int i = 0; i < 60; i++) lines.Add($"{{\"source\":\"add\",\"instruction\":\"{i} + {i % 7}\",\"output\":\"{i + i % 7}\"}}");
        for (int i = 0; i < 15; i++) lines.Add($"{{\"source\":\"double\",\"instruction\":\"twice {i}\",\"output\":\"{2 * i}\"}}");
        var path = Path.Combine(_tiny.Root, "math.jsonl");
        File.WriteAllLines(path, lines);
        return path;
    }

    [Fact]
    public async Task Training_a_hugging_face_folder_on_jsonl_with_the_alpaca_template_completes()
    {
        var model = SaveTinyHfModel();
        var data = WriteMathJsonl();

        var o = await ColmProcess.RunAsync(_tiny.Root, "train", "--quiet", "--model", model, "--data", data,
            "--set", "colm.model.tokenizer=char", "--set", "colm.model.lora.rank=4", "--set", "colm.model.lora.targets=[q_proj, v_proj]",
            "--set", "colm.data.max-length=160", "--set", "colm.data.heldout-per-source=4",
            "--set", "colm.selection.pool=8", "--set", "colm.selection.budget=4", "--set", "colm.selection.probes=2",
            "--set", "colm.train.steps=3", "--set", "colm.telemetry.exporter=none",
            "--set", $"colm.run.root={_tiny.Root}", "--set", "colm.run.name=hf");

        Assert.True(o.ExitCode == 0, o.Stderr);
        var run = _tiny.RunPath("hf");
        Assert.Contains("\"completed\"", File.ReadAllText(Path.Combine(run, "status.json")));
        Assert.Contains("| add |", File.ReadAllText(Path.Combine(run, "report.md")));
        Assert.Contains("tiny-llama", File.ReadAllText(Path.Combine(run, "config.conf")));
        // The trained LoRA weights leave as a PEFT adapter naming its base model.
        Assert.True(File.Exists(Path.Combine(run, "adapter", "adapter_model.safetensors")));
        Assert.Contains("tiny-llama", File.ReadAllText(Path.Combine(run, "adapter", "adapter_config.json")));
        Assert.True(File.Exists(Path.Combine(run, "checkpoints", "step-000003", "adapter", "adapter_config.json")));

        // The adapter merges into a full folder that loads as a model again...
        var merged = Path.Combine(_tiny.Root, "merged");
        File.WriteAllText(Path.Combine(model, "tokenizer_config.json"), "{\"model_max_length\": 160}");
        var export = await ColmProcess.RunAsync(_tiny.Root, "export", "--model", model, "--adapter", Path.Combine(run, "adapter"),
            "--out", merged, "--set", "colm.model.tokenizer=char", "--set", "colm.model.lora.rank=4", "--set", "colm.model.lora.targets=[q_proj, v_proj]");
        Assert.True(export.ExitCode == 0, export.Stderr);
        Assert.NotNull(HfConfig.Read(merged));
        Assert.Equal(File.ReadAllText(Path.Combine(model, "tokenizer_config.json")), File.ReadAllText(Path.Combine(merged, "tokenizer_config.json")));

        // ...and training can continue from it.
        var more = await ColmProcess.RunAsync(_tiny.Root, "train", "--quiet", "--model", model, "--data", data, "--adapter", Path.Combine(run, "adapter"),
            "--set", "colm.model.tokenizer=char", "--set", "colm.model.lora.rank=4", "--set", "colm.model.lora.targets=[q_proj, v_proj]",
            "--set", "colm.data.max-length=160", "--set", "colm.data.heldout-per-source=4",
            "--set", "colm.selection.pool=8", "--set", "colm.selection.budget=4", "--set", "colm.selection.probes=2",
            "--set", "colm.train.steps=1", "--set", "colm.telemetry.exporter=none",
            "--set", $"colm.run.root={_tiny.Root}", "--set", "colm.run.name=hf-more");
        Assert.True(more.ExitCode == 0, more.Stderr);
    }

    [Fact]
    public async Task An_adapter_of_another_rank_stops_the_run_with_its_path()
    {
        var model = SaveTinyHfModel();
        var data = WriteMathJsonl();
        var adapter = Path.Combine(_tiny.Root, "rank8");
        using (var m = HfModelLoader.Load(model, new LoraSettings(8, 16, 0, ["v_proj"]))) Model.Peft.PeftAdapter.Export(m, adapter);

        var o = await ColmProcess.RunAsync(_tiny.Root, "train", "--quiet", "--model", model, "--data", data, "--adapter", adapter,
            "--set", "colm.model.tokenizer=char", "--set", "colm.model.lora.rank=4", "--set", "colm.model.lora.targets=[v_proj]",
            "--set", "colm.data.max-length=160", "--set", "colm.data.heldout-per-source=4", "--set", "colm.train.steps=1",
            "--set", "colm.selection.pool=8", "--set", "colm.selection.budget=4", "--set", "colm.telemetry.exporter=none",
            "--set", $"colm.run.root={_tiny.Root}", "--set", "colm.run.name=bad-adapter");

        // An adapter that does not fit the configuration is the user's input: exit 2, no stack trace.
        Assert.Equal(2, o.ExitCode);
        Assert.Contains("adapter_config.json", o.Stderr);
        Assert.Contains("r = 8", o.Stderr);
        Assert.DoesNotContain("   at ", o.Stderr);
    }

    [Fact]
    public async Task A_folder_of_an_unsupported_architecture_is_refused_by_name()
    {
        var dir = Path.Combine(_tiny.Root, "gpt2");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), "{\"architectures\": [\"GPT2LMHeadModel\"], \"vocab_size\": 50}");

        var o = await ColmProcess.RunAsync(_tiny.Root, "train", "--model", dir, "--set", "colm.model.tokenizer=char");

        Assert.Equal(2, o.ExitCode);
        Assert.Contains("colm.model.path", o.Stderr);
        Assert.Contains("GPT2LMHeadModel", o.Stderr);
    }
}
