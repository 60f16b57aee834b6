using System.Globalization;
using CoLM.Cluster.Configuration;
using CoLM.Cluster.Hosting;
using CoLM.Data;
using CoLM.Selection;

namespace CoLM.Cli;

/// <summary>
/// `colm data inspect FILE.jsonl`: what a run would see in a data file, before training on it.
/// Streams the file through its cached line index, so a multi-gigabyte file is never held whole.
/// </summary>
public static class DataInspectCommand
{
    public static int Run(CommandLine cl)
    {
        if (cl.Arguments.Count != 1) throw new UsageException("colm data inspect needs exactly one FILE.jsonl");
        string path = cl.Arguments[0];
        if (!File.Exists(path)) throw new DataFormatException(path, "file not found");
        var settings = SettingsReader.Read(RunPlan.Layer(null, cl.ConfigFiles, cl.Sets));
        settings = settings with { Data = settings.Data with { Kind = "jsonl", Path = path } };
        int maxLength = settings.Data.MaxLength;
        var tokenizer = RunPlan.LoadTokenizer(settings);

        var source = new JsonlExampleSource(path, settings.Data.Fields);
        var lengths = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        foreach (var example in source)
        {
            // BOS + (templated) prompt + target + EOS, as a run tokenizes it before truncation.
            string prompt = settings.Data.UsesAlpaca ? Tokenizers.PromptTemplate.Alpaca.Format(example.Prompt) : example.Prompt;
            int length = 2 + tokenizer.Encode(prompt).Length + tokenizer.Encode(example.Target).Length;
            if (!lengths.TryGetValue(example.Source, out var list)) lengths[example.Source] = list = [];
            list.Add(length);
        }

        var names = lengths.Keys.Order(StringComparer.Ordinal).ToArray();
        var counts = names.Select(n => lengths[n].Count).ToArray();
        var small = SmallSources.BelowMeanSize(counts);
        int total = counts.Sum();
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine($"{path}: {total} examples, {names.Length} sources, mean source size {(double)total / names.Length:0.0}; " +
                          $"fields source={settings.Data.Fields.Source} prompt={settings.Data.Fields.Prompt} target={settings.Data.Fields.Target}; " +
                          $"tokenizer {(settings.Model.UsesModelTokenizer ? settings.Model.Folder : "char")}, prompt template {(settings.Data.UsesAlpaca ? "alpaca" : "none")}, max length {maxLength}");
        Console.WriteLine();
        Console.WriteLine("| source | examples | share | small | tokens p50 | p90 | p99 | max | truncated at max length |");
        Console.WriteLine("|---|---:|---:|:---:|---:|---:|---:|---:|---:|");
        for (int i = 0; i < names.Length; i++)
        {
            var sorted = lengths[names[i]].Order().ToArray();
            int truncated = sorted.Count(l => l > maxLength);
            Console.WriteLine(string.Create(inv,
                $"| {names[i]} | {counts[i]} | {100.0 * counts[i] / total:0.0}% | {(small[i] ? "yes" : "")} | {Percentile(sorted, 0.5)} | {Percentile(sorted, 0.9)} | {Percentile(sorted, 0.99)} | {sorted[^1]} | {truncated} ({100.0 * truncated / sorted.Length:0.0}%) |"));
        }
        int smallTotal = Enumerable.Range(0, names.Length).Where(i => small[i]).Sum(i => counts[i]);
        Console.WriteLine();
        Console.WriteLine(string.Create(inv,
            $"{small.Count(s => s)} of {names.Length} sources are small (below the mean size), holding {100.0 * smallTotal / total:0.0}% of the examples; CoLM keeps them whole."));
        return ColmCommand.Ok;
    }

    private static int Percentile(int[] sorted, double q) => sorted[Math.Min(sorted.Length - 1, (int)Math.Floor(q * (sorted.Length - 1) + 0.5))];
}
