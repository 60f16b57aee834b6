namespace CoLM.System.Tests;

/// <summary>`colm pretrain` end to end: the built-in decoder learns the corpus, and `colm train --model` fine-tunes the folder it writes.</summary>
public sealed class PretrainTests : IDisposable
{
    private readonly TinyRun _tiny = new();

    public void Dispose() => _tiny.Dispose();

    private static readonly string[] TinyModel =
        ["colm.model.dim=32", "colm.model.layers=2", "colm.model.heads=2", "colm.model.hidden-dim=64", "colm.model.lora.rank=4", "colm.model.lora.alpha=8"];

    [Fact]
    public async Task Pretraining_lowers_the_corpus_loss_and_writes_a_folder_that_fine_tuning_loads()
    {
        string folder = Path.Combine(_tiny.Root, "base");
        var pretrain = await ColmProcess.RunAsync(_tiny.Root, ["pretrain", "--out", folder,
            .. TinyRun.SetArgs([.. TinyModel, "colm.pretrain.steps=60", "colm.pretrain.batch-size=16", "colm.pretrain.learning-rate=0.01"])]);

        Assert.True(pretrain.ExitCode == 0, pretrain.Stderr);
        var losses = pretrain.Stdout.Split('\n').Where(l => l.StartsWith("step ", StringComparison.Ordinal))
            .Select(l => double.Parse(l.Split("loss ")[1].Split(' ')[0], global::System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(20, losses.Length); // a line every 3 steps
        Assert.True(losses[^1] < 0.7 * losses[0], $"the corpus loss should fall: {string.Join(", ", losses)}");
        Assert.True(File.Exists(Path.Combine(folder, "config.json")));
        Assert.Contains("LlamaForCausalLM", File.ReadAllText(Path.Combine(folder, "config.json")));
        var provenance = File.ReadAllText(Path.Combine(folder, CoLM.Training.PretrainedBase.ProvenanceFile));
        Assert.Contains("\"tokenizer\": \"char\"", provenance);
        Assert.Contains("\"steps\": 60", provenance);

        // No tokenizer setting: a folder colm pretrain wrote is read by characters.
        var train = await ColmProcess.RunAsync(_tiny.Root, ["train", "--quiet", "--model", folder,
            .. TinyRun.SetArgs([.. _tiny.Sets("tuned", "colm.train.steps=2"), "colm.model.lora.rank=4", "colm.model.lora.alpha=8"])]);

        Assert.True(train.ExitCode == 0, train.Stderr);
        Assert.Contains("\"completed\"", File.ReadAllText(Path.Combine(_tiny.RunPath("tuned"), "status.json")));
    }

    [Fact]
    public void The_default_run_fine_tunes_the_shipped_pretrained_base_and_random_keeps_the_seeded_decoder()
    {
        var shipped = CoLM.Cluster.Configuration.SettingsReader.Read(CoLM.Cluster.Hosting.RunPlan.Layer(null, [], []));
        Assert.Equal(CoLM.Training.PretrainedBase.ShippedFolder, shipped.Model.Folder);
        Assert.True(shipped.Model.IsHuggingFace);
        Assert.False(shipped.Model.UsesModelTokenizer);
        Assert.Contains("\"tokenizer\": \"char\"", File.ReadAllText(Path.Combine(shipped.Model.Folder, CoLM.Training.PretrainedBase.ProvenanceFile)));

        var random = CoLM.Cluster.Configuration.SettingsReader.Read(CoLM.Cluster.Hosting.RunPlan.Layer(null, [], ["colm.model.base=random"]));
        Assert.Equal("", random.Model.Folder);
        Assert.False(random.Model.IsHuggingFace);

        var e = Assert.Throws<CoLM.Cluster.Configuration.ConfigException>(() =>
            CoLM.Cluster.Configuration.SettingsReader.Read(CoLM.Cluster.Hosting.RunPlan.Layer(null, [], ["colm.model.tokenizer=model"])));
        Assert.Contains("colm.model.tokenizer", e.Message);
    }

    [Fact]
    public async Task Pretraining_refuses_a_model_folder_and_a_non_empty_output()
    {
        var fromFolder = await ColmProcess.RunAsync(_tiny.Root, "pretrain", "--model", _tiny.Root);
        Assert.Equal(2, fromFolder.ExitCode);
        Assert.Contains("colm.model.path", fromFolder.Stderr);

        File.WriteAllText(Path.Combine(_tiny.Root, "x.txt"), "taken");
        var taken = await ColmProcess.RunAsync(_tiny.Root, "pretrain", "--out", _tiny.Root);
        Assert.Equal(2, taken.ExitCode);
        Assert.Contains("is not empty", taken.Stderr);
    }
}
