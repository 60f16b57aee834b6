using Akka.Configuration;
using CoLM.Cluster.Configuration;
using CoLM.Cluster.Runs;
using CoLM.Data;
using CoLM.Training;
using CoLM.Training.Settings;

namespace CoLM.Cluster.Hosting;

/// <summary>A validated run, ready to start: settings, data loaded, run directory chosen.</summary>
public sealed record RunPlan(ColmSettings Settings, Config Hocon, DataMixture Data, RunDirectory Run, CheckpointPaths? ResumeFrom)
{
    /// <summary>The resolved configuration, as saved in the run directory and every checkpoint.</summary>
    public string ResolvedConfig => HoconWriter.Write(Hocon, "colm");

    /// <summary>What the user should know before the run starts, e.g. a damaged checkpoint skipped on resume.</summary>
    public IReadOnlyList<string> Notices { get; init; } = [];

    /// <summary>
    /// Resolves config layers and loads the data before anything is written, so bad input
    /// leaves no run directory behind. <paramref name="configFiles"/> and <paramref name="sets"/>
    /// are applied in order over the embedded defaults (or over a resumed run's saved config).
    /// </summary>
    public static RunPlan Prepare(IReadOnlyList<string> configFiles, IReadOnlyList<string> sets, string? resumeDir)
    {
        var defaults = HoconSources.Defaults();
        Config baseConfig = defaults;
        RunDirectory? resumed = null;
        CheckpointPaths? checkpoint = null;
        CheckpointChoice? choice = null;
        if (resumeDir is not null)
        {
            resumed = RunDirectory.OpenExisting(resumeDir);
            choice = CheckpointVerifier.LatestVerified(resumed);
            checkpoint = choice.Chosen ?? throw NothingToResume(resumed, choice);
            // The checkpoint's own config is the one that produced it (a resume may have changed
            // e.g. the step count); the run's config.conf stays as the run was first started.
            var saved = HoconSources.ParseFile(checkpoint.Config);
            HoconSources.RejectUnknownKeys(saved, defaults, checkpoint.Config);
            baseConfig = saved.WithFallback(defaults);
        }

        var layered = Layer(baseConfig, configFiles, sets);
        var settings = SettingsReader.Read(layered);
        // Checked here, not when settings are read: a cluster run's trainers are known only once the client has counted them.
        if (settings.Train.MinTrainers > settings.Train.Trainers)
            throw new ConfigException("colm.train.min-trainers",
                $"{settings.Train.MinTrainers} is more than the run's {settings.Train.Trainers} trainers (colm.train.trainers, or the trainers the cluster offers)");
        var data = LoadData(settings);
        if (settings.Model.IsHuggingFace) ModelFolder(() => TrainerReplica.SketchWidth(settings));
        if (resumed is not null)
        {
            RefuseModelChange(baseConfig, layered, checkpoint!);
            RefuseOtherRun(settings, data, checkpoint!);
            return new RunPlan(settings, layered, data, resumed, checkpoint) { Notices = SetAsideSkipped(resumed, choice!) };
        }
        var run = RunDirectory.CreateNew(settings.Run.Root, settings.Run.Name, HoconWriter.Write(layered, "colm"));
        return new RunPlan(settings, layered, data, run, null) { Notices = SmallSourceShare.Warning(settings.Selection, data) is { } w ? [w] : [] };
    }

    /// <summary>
    /// A run submitted to a cluster node: the client's resolved configuration, read over the
    /// embedded defaults with the same unknown-key check as a local run.
    /// </summary>
    public static (Config Config, ColmSettings Settings) ReadSubmitted(string resolvedConfig)
    {
        var defaults = HoconSources.Defaults();
        var parsed = ConfigurationFactory.ParseString(resolvedConfig);
        HoconSources.RejectUnknownKeys(parsed, defaults, "the submitted run configuration");
        var layered = parsed.WithFallback(defaults);
        return (layered, SettingsReader.Read(layered));
    }

    /// <summary>Embedded defaults, then each file, then COLM__* environment variables, then each --set; unknown keys refused.</summary>
    public static Config Layer(Config? baseConfig, IReadOnlyList<string> configFiles, IReadOnlyList<string> sets)
    {
        var defaults = HoconSources.Defaults();
        var layered = baseConfig ?? defaults;
        foreach (var file in configFiles)
        {
            var parsed = HoconSources.ParseFile(file);
            HoconSources.RejectUnknownKeys(parsed, defaults, file);
            layered = parsed.WithFallback(layered);
        }
        foreach (var (origin, parsed) in HoconSources.FromEnvironment(Environment.GetEnvironmentVariables()))
        {
            HoconSources.RejectUnknownKeys(parsed, defaults, origin);
            layered = parsed.WithFallback(layered);
        }
        foreach (var set in sets)
        {
            var parsed = HoconSources.ParseSet(set);
            HoconSources.RejectUnknownKeys(parsed, defaults, "--set");
            layered = parsed.WithFallback(layered);
        }
        return layered;
    }

    /// <summary>
    /// A checkpoint holds weights for one model shape; overriding a shape setting on resume
    /// would load them into the wrong model. Refused here, before anything starts.
    /// </summary>
    private static void RefuseModelChange(Config saved, Config resolved, CheckpointPaths checkpoint)
    {
        string[] shape = ["path", "dim", "layers", "heads", "hidden-dim", "max-seq-len", "tokenizer", "init-seed", "lora.rank", "lora.targets"];
        foreach (var key in shape)
        {
            string path = "colm.model." + key;
            string before = Describe(saved, path), after = Describe(resolved, path);
            // A cluster submission sends paths absolute; the same folder named relatively is no change.
            if (key == "path" && before.Length > 0 && after.Length > 0) (before, after) = (Path.GetFullPath(before), Path.GetFullPath(after));
            if (before != after)
                throw new CheckpointMismatchException(checkpoint.Directory,
                    $"written for a different model shape: {path} = {before} in the checkpoint, {after} requested; " +
                    "resume with the checkpoint's model settings or start a new run");
        }
    }

    /// <summary>
    /// The coordinator's state is read here, before any actor starts: a checkpoint of another
    /// selection method or other training data is refused with both sides named.
    /// </summary>
    private static void RefuseOtherRun(ColmSettings settings, DataMixture data, CheckpointPaths checkpoint)
    {
        var (state, _) = CheckpointStore.Load(checkpoint);
        if (state.Method != settings.Selection.Method.ToString())
            throw new CheckpointMismatchException(checkpoint.Directory,
                $"written by a {state.Method} run, this run is {settings.Selection.Method} (colm.selection.method): resume with the run's method or start a new run");
        if (CheckpointDataFit.Problem(state, data) is { } problem)
            throw new CheckpointMismatchException(checkpoint.Directory,
                $"{problem} (colm.data.*): resume with the data the run started with or start a new run");
    }

    private static RunDirectoryException NothingToResume(RunDirectory run, CheckpointChoice choice) =>
        choice.Skipped.Count == 0
            ? new RunDirectoryException(run.Path, "has no complete checkpoint to resume from")
            : new RunDirectoryException(run.CheckpointsPath,
                "no checkpoint verifies, nothing to resume from: " + string.Join("; ", choice.Skipped.Select(s => $"{s.Checkpoint.Name}: {s.Reason}")));

    /// <summary>Damaged checkpoints newer than the chosen one go aside, so the resumed run writes their steps afresh; one line each says so.</summary>
    private static IReadOnlyList<string> SetAsideSkipped(RunDirectory run, CheckpointChoice choice)
    {
        var notices = new List<string>();
        foreach (var skipped in choice.Skipped)
        {
            var aside = CheckpointStore.SetAside(skipped.Checkpoint);
            notices.Add($"{skipped.Line}; moved to {Path.GetRelativePath(run.Path, aside)}");
        }
        if (choice.Note is { } note) notices.Add($"checkpoint {choice.Chosen!.Name} {note}");
        if (choice.Skipped.Count > 0) notices.Add($"resuming from the newest checkpoint that verifies, {choice.Chosen!.Name}");
        return notices;
    }

    private static string Describe(Config c, string path)
    {
        var v = c.GetValue(path);
        return v.IsArray() ? "[" + string.Join(", ", v.GetArray().Select(x => x.GetString())) + "]" : v.GetString();
    }

    /// <summary>Problems with a model folder's files are the user's input: reported against colm.model.path.</summary>
    public static T ModelFolder<T>(Func<T> read)
    {
        try
        {
            return read();
        }
        catch (Exception e) when (e is InvalidDataException or NotSupportedException or FormatException or IOException)
        {
            throw new ConfigException("colm.model.path", e.Message);
        }
    }

    public static ITokenizer LoadTokenizer(ColmSettings s) =>
        s.Model.UsesModelTokenizer ? ModelFolder(() => Tokenizers.HfTokenizerLoader.Load(s.Model.Folder)) : CharTokenizer.Instance;

    public static DataMixture LoadData(ColmSettings s)
    {
        var tokenizer = LoadTokenizer(s);
        Func<string, string>? template = s.Data.UsesAlpaca ? instruction => Tokenizers.PromptTemplate.Alpaca.Format(instruction) : null;
        if (s.Data.Kind != "jsonl") return MixtureBuilder.FromSynthetic(s.Data.Synthetic, tokenizer, s.Data.MaxLength);

        // Streamed: the file is read once, then by line through its cached index (FILE.jsonl.idx).
        var classification = new ClassificationFields(Source: s.Data.Fields.Source);
        string format = s.Data.Format == "auto" ? ClassificationJsonl.DetectFormat(s.Data.Path, s.Data.Fields.Prompt, classification) : s.Data.Format;
        if (format == "math")
            return MixtureBuilder.FromJsonl(s.Data.Path, s.Data.Fields, tokenizer, s.Data.MaxLength, s.Data.HeldoutPerSource, s.Data.Synthetic.Seed, template);
        if (s.Data.Labels.Count < 2)
            throw new ConfigException("colm.data.labels", $"{s.Data.Path} holds classification rows; list their label words (at least two), e.g. [no, yes]");
        // The label word is the target; held-out exact match is then accuracy over label words.
        return MixtureBuilder.FromJsonlLines(s.Data.Path, ClassificationJsonl.LineParser(classification, s.Data.Labels), tokenizer,
            s.Data.MaxLength, s.Data.HeldoutPerSource, s.Data.Synthetic.Seed, template);
    }
}
