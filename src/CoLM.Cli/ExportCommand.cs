using CoLM.Cluster.Configuration;
using CoLM.Cluster.Hosting;
using CoLM.Model;
using CoLM.Model.Hf;
using CoLM.Model.Phi;
using static TorchSharp.torch;

namespace CoLM.Cli;

/// <summary>
/// `colm export --model HF_FOLDER --adapter PEFT_DIR --out DIR [--dtype float32|float16|bfloat16]`:
/// merges the adapter into the base weights (W + s B A) and writes a full Hugging Face folder: LlamaForCausalLM for
/// the Llama family (Phi3 included, unfused), PhiForCausalLM for Phi-2.
/// </summary>
public static class ExportCommand
{
    public static int Run(CommandLine cl)
    {
        var settings = SettingsReader.Read(RunPlan.Layer(null, cl.ConfigFiles, cl.Sets));
        if (!settings.Model.IsHuggingFace) throw new UsageException("colm export needs --model HF_FOLDER (or colm.model.base = pretrained, the shipped base)");
        if (settings.Model.Adapter.Length == 0) throw new UsageException("colm export needs --adapter PEFT_DIR");
        string outDir = cl.Options.GetValueOrDefault("out") ?? throw new UsageException("colm export needs --out DIR");
        var dtype = cl.Options.GetValueOrDefault("dtype", "float32") switch
        {
            "float32" => ScalarType.Float32,
            "float16" => ScalarType.Float16,
            "bfloat16" => ScalarType.BFloat16,
            var other => throw new UsageException($"--dtype: '{other}' is not float32, float16 or bfloat16"),
        };
        using var model = RunPlan.ModelFolder(() => EvalCommand.LoadModel(settings.Model.Folder, settings.Model.Adapter));
        RunPlan.ModelFolder(() =>
        {
            switch (model)
            {
                case LlamaDecoder llama:
                    HfModelSaver.SaveMerged(llama, outDir, dtype);
                    break;
                case PhiDecoder phi:
                    PhiSaver.SaveMerged(phi, outDir, dtype, baseModelDir: settings.Model.Folder);
                    break;
                default:
                    throw new UsageException($"colm export writes the Llama family and Phi-2 only; {settings.Model.Folder} is {model.GetType().Name}");
            }
            return 0;
        });
        int copied = CopyTokenizerFiles(settings.Model.Folder, outDir);
        Console.WriteLine($"colm: merged {settings.Model.Adapter} into {settings.Model.Folder}; full model folder in {Path.GetFullPath(outDir)}" +
                          (copied > 0 ? $" (with {copied} tokenizer file(s))" : ""));
        return ColmCommand.Ok;
    }

    /// <summary>The files a Hugging Face folder's tokenizer and generation defaults live in.</summary>
    private static readonly string[] TokenizerFiles =
    [
        "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
        "vocab.json", "merges.txt", "generation_config.json",
        // A folder `colm pretrain` wrote has no tokenizer; this file says it reads characters.
        CoLM.Training.PretrainedBase.ProvenanceFile,
    ];

    /// <summary>A full model folder loads elsewhere with its tokenizer: copied unchanged from the base folder.</summary>
    private static int CopyTokenizerFiles(string baseDir, string outDir)
    {
        int copied = 0;
        foreach (var name in TokenizerFiles)
        {
            var source = Path.Combine(baseDir, name);
            if (!File.Exists(source)) continue;
            File.Copy(source, Path.Combine(outDir, name), overwrite: true);
            copied++;
        }
        return copied;
    }
}
