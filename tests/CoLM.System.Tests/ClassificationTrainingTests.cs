using CoLM.Cluster.Configuration;
using CoLM.Cluster.Hosting;

namespace CoLM.System.Tests;

/// <summary>`colm train --data superglue.jsonl`: classification rows, the label word as target, accuracy per source.</summary>
public sealed class ClassificationTrainingTests : IDisposable
{
    private readonly TinyRun _tiny = new();

    public void Dispose() => _tiny.Dispose();

    private string WriteSuperGlueJsonl()
    {
        var lines = new List<string>();
        for (int i = 0; i < 120; i++) lines.Add($"{{\"source\":\"parity\",\"text\":\"is {i} even\",\"label\":{(i % 2 == 0 ? "true" : "false")}}}");
        for (int i = 0; i < 40; i++)
            lines.Add($"{{\"source\":\"rte\",\"premise\":\"{i} cats\",\"hypothesis\":\"{(i % 3 == 0 ? i : i + 1)} cats\",\"label\":\"{(i % 3 == 0 ? "yes" : "no")}\"}}");
        var path = Path.Combine(_tiny.Root, "superglue.jsonl");
        File.WriteAllLines(path, lines);
        return path;
    }

    [Fact]
    public async Task Classification_jsonl_trains_and_reports_held_out_accuracy_per_source()
    {
        var data = WriteSuperGlueJsonl();
        var result = await _tiny.TrainAsync("cls", "colm.data.kind=jsonl", $"colm.data.path={data}", "colm.data.labels=[no, yes]",
            "colm.data.prompt-template=none", "colm.data.max-length=32", "colm.train.steps=12", "colm.train.eval-every=12");

        Assert.Equal("completed", result.State);
        Assert.Equal(["parity", "rte"], result.After!.Sources.Keys.Order());
        Assert.Equal(8, result.After.Sources.Values.Sum(s => s.Examples)); // 4 held out per source
        Assert.True(result.After.MeanLoss < result.Before!.MeanLoss, $"held-out loss {result.Before.MeanLoss} -> {result.After.MeanLoss}");
        var report = File.ReadAllText(Path.Combine(_tiny.RunPath("cls"), "report.md"));
        Assert.Contains("| parity |", report);
        Assert.Contains("| rte |", report);
    }

    [Fact]
    public void Classification_rows_without_label_words_are_refused_naming_the_key()
    {
        var data = WriteSuperGlueJsonl();
        var error = Assert.Throws<ConfigException>(() =>
            RunPlan.Prepare([], _tiny.Sets("no-labels", "colm.data.kind=jsonl", $"colm.data.path={data}", "colm.data.max-length=32"), null));
        Assert.Contains("colm.data.labels", error.Message);
    }

    [Fact]
    public void A_forced_math_format_on_classification_rows_names_the_file_line_and_field()
    {
        var data = WriteSuperGlueJsonl();
        var error = Assert.ThrowsAny<Exception>(() =>
            RunPlan.Prepare([], _tiny.Sets("math", "colm.data.kind=jsonl", $"colm.data.path={data}", "colm.data.format=math"), null));
        Assert.Contains("superglue.jsonl:1", error.Message);
        Assert.Contains("instruction", error.Message);
    }
}
