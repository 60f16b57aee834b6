using System.Globalization;
using System.Text;
using CoLM.Cluster.Actors;

namespace CoLM.Cluster.Runs;

/// <summary>The final report: per-source held-out exact match and loss before and after training.</summary>
public static class RunReport
{
    public static string Markdown(CoordinatorContext ctx, EvalReport? before, EvalReport? after, long step, string state,
        IReadOnlyList<string>? pictures = null)
    {
        var s = ctx.Settings;
        var sb = new StringBuilder();
        sb.AppendLine($"# CoLM run report ({state} at step {step} of {s.Train.Steps})");
        sb.AppendLine();
        sb.AppendLine($"- method: {s.Selection.Method}, pool L = {s.Selection.Pool}, budget b = {s.Selection.TrainedPerStep}, probes K = {s.Selection.Probes}");
        string lora = $"LoRA r = {s.Model.Lora.Rank} on {string.Join(", ", s.Model.Lora.Targets)}";
        sb.AppendLine(s.Model.IsHuggingFace
            ? $"- model: {s.Model.Folder} ({ModelDescription(s.Model.Folder)}), {lora}"
            : $"- model: built-in decoder from seed (dim {s.Model.Dim}, layers {s.Model.Layers}, heads {s.Model.Heads}), {lora}");
        sb.AppendLine($"- data: {s.Data.Kind}{(s.Data.Kind == "jsonl" ? " " + s.Data.Path : "")}, {ctx.Data.Train.Count} train / {ctx.Data.Heldout.Count} held-out examples, {ctx.Data.SourceNames.Count} sources, {ctx.Data.TruncatedCount} truncated");
        sb.AppendLine($"- trainers: {s.Train.Trainers}, learning rate {s.Train.LearningRate.ToString(CultureInfo.InvariantCulture)}");
        sb.AppendLine();
        sb.AppendLine(Table(ctx, before, after));
        foreach (var picture in pictures ?? [])
        {
            sb.AppendLine($"![{Path.GetFileNameWithoutExtension(picture)}]({picture})");
            sb.AppendLine();
        }
        return sb.ToString();
    }

    /// <summary>What the folder's config.json says the model is (architecture and size), or why it cannot tell.</summary>
    private static string ModelDescription(string folder)
    {
        try
        {
            using var config = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "config.json")));
            var root = config.RootElement;
            string Field(string name) => root.TryGetProperty(name, out var v) ? v.ToString() : "?";
            string architecture = root.TryGetProperty("architectures", out var a) && a.ValueKind == System.Text.Json.JsonValueKind.Array && a.GetArrayLength() > 0
                ? a[0].GetString() ?? "?"
                : Field("model_type");
            return $"{architecture}, hidden {Field("hidden_size")}, layers {Field("num_hidden_layers")}, heads {Field("num_attention_heads")}";
        }
        catch (Exception e) when (e is IOException or System.Text.Json.JsonException or UnauthorizedAccessException)
        {
            return "config.json unreadable: " + e.Message;
        }
    }

    public static string Table(CoordinatorContext ctx, EvalReport? before, EvalReport? after)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| source | train examples | truncated | held-out | accuracy before | accuracy after | loss before | loss after |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        var truncated = ctx.Data.TruncatedPerSource;
        for (int id = 0; id < ctx.Data.SourceNames.Count; id++)
        {
            string name = ctx.Data.SourceNames[id];
            var b = before?.Sources.GetValueOrDefault(name);
            var a = after?.Sources.GetValueOrDefault(name);
            sb.AppendLine($"| {name} | {ctx.Data.TrainCountPerSource[id]} | {truncated[id]} | {(a ?? b)?.Examples ?? 0} | {Pct(b?.Accuracy)} | {Pct(a?.Accuracy)} | {Num(b?.Loss)} | {Num(a?.Loss)} |");
        }
        sb.AppendLine($"| **mean over sources** | {ctx.Data.Train.Count} | {truncated.Sum()} | {ctx.Data.Heldout.Count} | {Pct(before?.MeanAccuracy)} | {Pct(after?.MeanAccuracy)} | {Num(before?.MeanLoss)} | {Num(after?.MeanLoss)} |");
        var heldoutOnly = ctx.Data.HeldoutOnlySources.Order(StringComparer.Ordinal).ToArray();
        if (heldoutOnly.Length > 0 && heldoutOnly.Length < ctx.Data.SourceNames.Count)
        {
            sb.AppendLine();
            sb.AppendLine($"The means leave out {string.Join(", ", heldoutOnly)}: held out only (no training example), reported on its own.");
        }
        return sb.ToString();
    }

    private static string Pct(double? x) => x is { } v ? (100 * v).ToString("0.0", CultureInfo.InvariantCulture) + "%" : "-";

    private static string Num(double? x) => x is { } v ? v.ToString("0.000", CultureInfo.InvariantCulture) : "-";
}
