using System.Diagnostics;
using System.Globalization;
using CoLM.Cluster.Configuration;
using CoLM.Cluster.Hosting;
using CoLM.Training;

namespace CoLM.Cli;

/// <summary>
/// `colm pretrain [--out DIR]`: pretrains the built-in decoder (colm.model.*) on the broad
/// synthetic corpus (colm.pretrain.*) and saves it as a Hugging Face Llama folder, the embedded
/// stand-in for a pretrained model that fine-tuning with CoLM starts from.
/// </summary>
public static class PretrainCommand
{
    public const string DefaultOut = "models/colm-base";

    public static int Run(CommandLine cl, CancellationToken stop)
    {
        var s = SettingsReader.Read(RunPlan.Layer(null, cl.ConfigFiles, cl.Sets));
        if (s.Model.Path.Length > 0)
            throw new ConfigException("colm.model.path", "colm pretrain trains the built-in decoder from its seed; leave colm.model.path empty");
        string outDir = Path.GetFullPath(cl.Options.GetValueOrDefault("out", DefaultOut));
        if (Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any())
            throw new UsageException($"--out {outDir} exists and is not empty; choose another folder or remove it");

        TorchSharp.torch.set_num_threads(Environment.ProcessorCount);
        using var pretrainer = new Pretrainer(s);
        var p = s.Pretrain;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"colm pretrain: dim {s.Model.Dim} x {s.Model.Layers} layers, {pretrainer.Parameters:N0} weights, {p.Steps} steps of {p.BatchSize} lines, lr {p.LearningRate}"));
        var clock = Stopwatch.StartNew();
        int every = Math.Max(1, p.Steps / 20);
        double lastLoss = double.NaN;
        pretrainer.Run((step, loss) =>
        {
            lastLoss = loss;
            if (!cl.Quiet)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"step {step}/{p.Steps}: loss {loss:0.000} ({clock.Elapsed.TotalSeconds:0} s)"));
        }, every, stop);
        pretrainer.Save(outDir, lastLoss, clock.Elapsed.TotalSeconds);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"colm pretrain: saved {outDir} after {clock.Elapsed.TotalSeconds:0} s; fine-tune it with"));
        Console.WriteLine($"  colm train --model {outDir}");
        return ColmCommand.Ok;
    }
}
