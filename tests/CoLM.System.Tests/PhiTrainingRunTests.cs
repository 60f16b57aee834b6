using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using CoLM.Cluster.Hosting;
using CoLM.Cluster.Runs;
using CoLM.Data;
using CoLM.Model.Phi;
using CoLM.Model.SafeTensors;
using static TorchSharp.torch;

namespace CoLM.System.Tests;

/// <summary>CoLM training on a Phi-2 (PhiForCausalLM) folder, and on a folder whose torch_dtype is bfloat16.</summary>
public sealed class PhiTrainingRunTests : IDisposable
{
    private readonly TinyRun _tiny = new();

    public void Dispose() => _tiny.Dispose();

    /// <summary>
    /// A Phi folder of tests/fixtures/phi/tiny's shape (Phi-2's layout: partial rotary, parallel attention and MLP,
    /// biases) but with the character tokenizer's vocabulary and room for 160 positions, random weights.
    /// </summary>
    private string SaveTinyPhiFolder()
    {
        var dir = Path.Combine(_tiny.Root, "tiny-phi");
        Directory.CreateDirectory(dir);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(FixtureDir("phi", "tiny"), "config.json")))!.AsObject();
        config["vocab_size"] = CharTokenizer.Instance.VocabSize;
        config["max_position_embeddings"] = 256;
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
        var shape = PhiLoader.ReadConfig(dir);
        using var scope = NewDisposeScope();
        using var generator = new Generator(17);
        var tensors = PhiLoader.ExpectedTensors(shape)
            .Select(t => (t.Name, t.Name.EndsWith("layernorm.weight") ? ones(t.Shape) : randn(t.Shape, generator: generator) * 0.2))
            .ToList();
        SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors);
        return dir;
    }

    private string WriteMathJsonl()
    {
        var lines = new List<string>();
        for (int i = 0; i < 40; i++) lines.Add($"{{\"source\":\"add\",\"instruction\":\"{i} + {i % 7}\",\"output\":\"{i + i % 7}\"}}");
        for (int i = 0; i < 12; i++) lines.Add($"{{\"source\":\"double\",\"instruction\":\"twice {i}\",\"output\":\"{2 * i}\"}}");
        var path = Path.Combine(_tiny.Root, "math.jsonl");
        File.WriteAllLines(path, lines);
        return path;
    }

    private async Task<(RunResult Result, List<StepReport> Steps)> Train(string name, params string[] extra)
    {
        string[] sets =
        [
            "colm.model.tokenizer=char", "colm.model.lora.rank=4", "colm.model.lora.alpha=8",
            "colm.data.max-length=160", "colm.data.heldout-per-source=4",
            "colm.selection.pool=8", "colm.selection.budget=4", "colm.selection.probes=4", "colm.selection.feature=zo",
            "colm.train.steps=3", "colm.train.learning-rate=0.01", "colm.train.checkpoint-every=0", "colm.train.eval-every=0",
            "colm.telemetry.exporter=none", $"colm.run.root={_tiny.Root}", $"colm.run.name={name}", .. extra,
        ];
        var observer = new Recorder();
        var result = await LocalRun.RunAsync(RunPlan.Prepare([], sets, null), observer, CancellationToken.None);
        return (result, observer.Steps.OrderBy(s => s.Step).ToList());
    }

    [Fact]
    public async Task CoLM_trains_a_Phi_2_folder_with_zeroth_order_sketches_and_exports_a_PEFT_adapter_with_Phi_names()
    {
        var model = SaveTinyPhiFolder();
        var (result, steps) = await Train("phi", $"colm.model.path={model}", $"colm.data.path={WriteMathJsonl()}", "colm.data.kind=jsonl",
            "colm.model.lora.targets=[q_proj, v_proj, dense, fc1]");

        Assert.True(result.State == "completed", result.Error);
        Assert.Equal(3, steps.Count);
        Assert.All(steps, s => Assert.True(double.IsFinite(s.Loss) && s.Loss > 0, $"step {s.Step} loss {s.Loss}"));
        Assert.True(double.IsFinite(result.After!.MeanLoss));

        var adapter = Path.Combine(_tiny.RunPath("phi"), "adapter");
        using (var file = SafeTensorsFile.Open(Path.Combine(adapter, "adapter_model.safetensors")))
        {
            var names = file.Tensors.Select(t => t.Name).ToHashSet();
            Assert.Contains("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight", names);
            Assert.Contains("base_model.model.model.layers.0.self_attn.dense.lora_A.weight", names);
            Assert.Contains("base_model.model.model.layers.0.mlp.fc1.lora_B.weight", names);
            Assert.Equal(2 * 4 * 2, names.Count);
        }
        Assert.Contains("fc1", File.ReadAllText(Path.Combine(adapter, "adapter_config.json")));
    }

    [Fact]
    public void Llama_module_names_are_refused_for_a_Phi_folder_naming_the_key()
    {
        var model = SaveTinyPhiFolder();
        var error = Assert.Throws<CoLM.Cluster.Configuration.ConfigException>(() =>
            RunPlan.Prepare([], [$"colm.model.path={model}", "colm.model.lora.targets=[v_proj, o_proj]", $"colm.run.root={_tiny.Root}"], null));
        Assert.Contains("colm.model.lora.targets", error.Message);
        Assert.Contains("o_proj", error.Message);
        Assert.Contains("dense", error.Message);
    }

    [Fact]
    public async Task Dtype_auto_trains_a_bfloat16_folder_in_bfloat16()
    {
        var model = SaveTinyPhiFolder();
        var configPath = Path.Combine(model, "config.json");
        var config = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        config["torch_dtype"] = "bfloat16";
        File.WriteAllText(configPath, config.ToJsonString());

        var (result, steps) = await Train("phi-bf16", $"colm.model.path={model}", $"colm.data.path={WriteMathJsonl()}", "colm.data.kind=jsonl",
            "colm.model.lora.targets=[q_proj, v_proj]", "colm.model.dtype=auto");

        Assert.True(result.State == "completed", result.Error);
        Assert.All(steps, s => Assert.True(double.IsFinite(s.Loss) && s.Loss > 0, $"step {s.Step} loss {s.Loss}"));
    }

    [Fact]
    public async Task Colm_export_merges_a_Phi_adapter_into_a_PhiForCausalLM_folder_that_loads_as_the_adapted_model()
    {
        var model = SaveTinyPhiFolder();
        var adapter = Path.Combine(_tiny.Root, "phi-adapter");
        var lora = new CoLM.Model.LoraSettings(Rank: 4, Alpha: 8, Dropout: 0, Targets: ["q_proj", "v_proj", "dense", "fc1", "fc2"]);
        using var adapted = PhiLoader.Load(model, lora, seed: 3);
        using (var noGrad = no_grad())
        using (var generator = new Generator(9))
        {
            foreach (var (_, parameter) in adapted.TrainableParameters().Where(p => p.Name.EndsWith(".lora_B", StringComparison.Ordinal)))
            {
                using var values = randn(parameter.shape, generator: generator);
                using var scaled = values.mul(0.1);
                parameter.copy_(scaled);
            }
        }
        adapted.eval();
        CoLM.Model.Peft.PeftAdapter.Export(adapted, adapter, model);

        var merged = Path.Combine(_tiny.Root, "phi-merged");
        var export = await ColmProcess.RunAsync(_tiny.Root, "export", "--model", model, "--adapter", adapter, "--out", merged,
            "--set", "colm.model.tokenizer=char", "--set", "colm.model.lora.rank=4", "--set", "colm.model.lora.targets=[q_proj, v_proj, dense, fc1, fc2]");
        Assert.True(export.ExitCode == 0, export.Stderr);

        Assert.Equal(adapted.Config, PhiLoader.ReadConfig(merged));
        Assert.Contains("\"PhiForCausalLM\"", File.ReadAllText(Path.Combine(merged, "config.json")));
        using var loaded = PhiLoader.Load(merged, new CoLM.Model.LoraSettings(1, 1, 0, []));
        loaded.eval();
        using var scope = NewDisposeScope();
        using var inference = no_grad();
        var tokens = tensor(new long[] { 1, 5, 9, 13, 17, 21, 25, 29 }, [1, 8]);
        float diff = adapted.forward(tokens).sub(loaded.forward(tokens)).abs().max().item<float>();
        Assert.True(diff < 1e-5, $"max abs logit difference {diff}");
    }

    private static string FixtureDir(string family, string name)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "fixtures", family, name);
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException($"tests/fixtures/{family}/{name}");
    }

    private sealed class Recorder : IRunObserver
    {
        private readonly ConcurrentBag<StepReport> _steps = [];

        public IEnumerable<StepReport> Steps => _steps;

        public void OnStep(StepReport report) => _steps.Add(report);

        public void OnEvaluation(EvalReport report) { }

        public void OnNotice(string message) { }
    }
}
