using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CoLM.Cluster.Configuration;
using CoLM.Cluster.Hosting;
using CoLM.Data;
using CoLM.Model;
using CoLM.Model.Generation;
using CoLM.Model.Hf;
using CoLM.Model.Peft;
using CoLM.Tokenizers;

namespace CoLM.Cli;

/// <summary>
/// `colm eval`: a Hugging Face model folder, optionally with a PEFT adapter, answers every
/// example of a JSONL file by greedy generation; answers are scored per source and every
/// prediction is written out, so a user can read what the model said.
/// </summary>
public static class EvalCommand
{
    private const int BatchSize = 8;

    public static int Run(CommandLine cl)
    {
        var o = cl.Options;
        var settings = SettingsReader.Read(RunPlan.Layer(null, cl.ConfigFiles, cl.Sets));
        if (!settings.Model.IsHuggingFace) throw new UsageException("colm eval needs --model HF_FOLDER (or colm.model.base = pretrained, the shipped base)");
        if (settings.Data.Kind != "jsonl") throw new UsageException("colm eval needs --data FILE.jsonl");
        string task = o.GetValueOrDefault("task", "math");
        if (task is not ("math" or "classification")) throw new UsageException($"--task: '{task}' is not math or classification");
        var labels = o.TryGetValue("labels", out var l) ? l.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries) : [];
        if (task == "classification" && labels.Length < 2) throw new UsageException("--task classification needs --labels with at least two label words");
        int maxNew = int.TryParse(o.GetValueOrDefault("max-new-tokens", "64"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n > 0
            ? n : throw new UsageException("--max-new-tokens: expected a positive integer");
        string outDir = Path.GetFullPath(o.GetValueOrDefault("out", Path.Combine("runs", "eval-" + DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture))));

        var tokenizer = RunPlan.LoadTokenizer(settings);
        var examples = task == "math"
            ? (IReadOnlyList<RawExample>)new JsonlExampleSource(settings.Data.Path, settings.Data.Fields)
            : ClassificationJsonl.Read(settings.Data.Path, new ClassificationFields(Source: settings.Data.Fields.Source), labels).ToList();
        using var model = RunPlan.ModelFolder(() => LoadModel(settings.Model.Folder, settings.Model.Adapter.Length > 0 ? settings.Model.Adapter : null,
            Training.TrainerReplica.ComputeDtype(settings)));
        TorchSharp.torch.set_num_threads(Math.Max(1, Environment.ProcessorCount));

        Directory.CreateDirectory(outDir);
        var predictionsPath = Path.Combine(outDir, "predictions.jsonl");
        var perSource = new SortedDictionary<string, (int N, int Correct)>(StringComparer.Ordinal);
        using (var predictions = new StreamWriter(predictionsPath + ".partial"))
        {
            for (int start = 0; start < examples.Count; start += BatchSize)
            {
                var batch = Enumerable.Range(start, Math.Min(BatchSize, examples.Count - start)).Select(i => examples[i]).ToArray();
                var prompts = batch.Select(e => Prompt(e, settings.Data.UsesAlpaca, tokenizer, model.MaxSeqLen - maxNew)).ToArray();
                var result = GreedyGenerator.Generate(model, prompts, maxNew, tokenizer.EosId, tokenizer.PadId);
                for (int j = 0; j < batch.Length; j++)
                {
                    string generated = tokenizer.Decode(result.Tokens[j]);
                    string? answer = task == "math" ? MathAnswer.Extract(generated) : generated.Trim();
                    bool correct = task == "math"
                        ? answer is not null && MathAnswer.Equivalent(answer, batch[j].Target)
                        : LabelAccuracy.Matches(generated, batch[j].Target, labels);
                    var (count, right) = perSource.GetValueOrDefault(batch[j].Source);
                    perSource[batch[j].Source] = (count + 1, right + (correct ? 1 : 0));
                    predictions.WriteLine(new JsonObject
                    {
                        ["origin"] = batch[j].Origin,
                        ["source"] = batch[j].Source,
                        ["generated"] = generated,
                        ["answer"] = answer,
                        ["target"] = batch[j].Target,
                        ["correct"] = correct,
                    }.ToJsonString());
                }
                Console.Write($"\r{Math.Min(start + BatchSize, examples.Count)}/{examples.Count} examples");
            }
        }
        Console.WriteLine();
        File.Move(predictionsPath + ".partial", predictionsPath, overwrite: true);

        var table = Table(perSource, task);
        File.WriteAllText(Path.Combine(outDir, "eval.md"), table);
        Console.WriteLine(table);
        Console.WriteLine($"colm: predictions and eval.md in {outDir}");
        return ColmCommand.Ok;
    }

    /// <summary>The folder's model with <paramref name="adapter"/> applied, frozen weights in <paramref name="dtype"/> (colm.model.dtype).</summary>
    public static CausalDecoder LoadModel(string modelPath, string? adapter, TorchSharp.torch.ScalarType dtype = TorchSharp.torch.ScalarType.Float32)
    {
        if (adapter is null)
            // No adapter: a rank-1 LoRA whose B is zero leaves the base model unchanged.
            return HfModelLoader.LoadDecoder(modelPath, new LoraSettings(1, 1, 0, ["v_proj"]), dtype);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(adapter, PeftAdapter.ConfigFile)))
            ?? throw new PeftAdapterException(adapter, "empty adapter_config.json");
        var lora = new LoraSettings(config["r"]!.GetValue<int>(), config["lora_alpha"]!.GetValue<double>(), 0,
            config["target_modules"]!.AsArray().Select(t => t!.GetValue<string>()).ToArray());
        var model = HfModelLoader.LoadDecoder(modelPath, lora, dtype);
        PeftAdapter.Import(model, adapter);
        return model;
    }

    /// <summary>BOS + the (templated) prompt, cut from the left so the answer fits the model's window.</summary>
    private static int[] Prompt(RawExample e, bool alpaca, ITokenizer tokenizer, int room)
    {
        var ids = tokenizer.Encode(alpaca ? PromptTemplate.Alpaca.Format(e.Prompt) : e.Prompt);
        if (ids.Length > room - 1) ids = ids[^(room - 1)..];
        return [tokenizer.BosId, .. ids];
    }

    private static string Table(IReadOnlyDictionary<string, (int N, int Correct)> perSource, string task)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"| source | examples | {(task == "math" ? "exact match" : "accuracy")} |");
        sb.AppendLine("|---|---:|---:|");
        foreach (var (source, (count, right)) in perSource)
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| {source} | {count} | {100.0 * right / count:0.0}% |"));
        int all = perSource.Values.Sum(v => v.N), correct = perSource.Values.Sum(v => v.Correct);
        sb.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| **all** | {all} | {100.0 * correct / Math.Max(1, all):0.0}% |"));
        return sb.ToString();
    }
}
