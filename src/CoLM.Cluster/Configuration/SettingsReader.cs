using Akka.Configuration;
using CoLM.Data;
using CoLM.Model;
using CoLM.Selection;
using CoLM.Training;
using CoLM.Training.Settings;

namespace CoLM.Cluster.Configuration;

/// <summary>Reads the resolved HOCON into typed settings once; every error names its path.</summary>
public static class SettingsReader
{
    private static readonly string[] LoraTargets =
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

    public static ColmSettings Read(Config c)
    {
        var run = new RunSettings(Str(c, "colm.run.root"), Str(c, "colm.run.name"), Long(c, "colm.run.seed"));

        string modelPath = Str(c, "colm.model.path");
        if (modelPath.Length > 0 && !File.Exists(System.IO.Path.Combine(modelPath, "config.json")))
            throw new ConfigException("colm.model.path", $"'{modelPath}' is not a Hugging Face model folder (no config.json)");
        string modelBase = OneOf(c, "colm.model.base", PretrainedBase.Pretrained, PretrainedBase.Random);
        if (modelPath.Length == 0 && modelBase == PretrainedBase.Pretrained && !File.Exists(System.IO.Path.Combine(PretrainedBase.ShippedFolder, "config.json")))
            throw new ConfigException("colm.model.base",
                $"the pretrained base is not installed next to colm ({PretrainedBase.ShippedFolder} has no config.json); rebuild colm, or set colm.model.base = random");
        // The folder the run loads, when any: a given path, else the shipped base.
        string folder = modelPath.Length > 0 ? modelPath : modelBase == PretrainedBase.Pretrained ? PretrainedBase.ShippedFolder : "";
        // Phi-2 names its projections differently (dense, fc1, fc2); every other architecture uses Llama's names.
        bool phi = folder.Length > 0 && Model.Hf.HfModelLoader.IsPhi(folder);
        var known = phi ? Model.Phi.PhiDecoder.KnownLoraTargets : LoraTargets;
        var targets = StrList(c, "colm.model.lora.targets");
        foreach (var t in targets)
            if (!known.Contains(t))
                throw new ConfigException("colm.model.lora.targets",
                    $"unknown module '{t}'{(phi ? " for PhiForCausalLM" : "")}; expected some of {string.Join(", ", known)}");
        if (!targets.Contains("v_proj"))
            throw new ConfigException("colm.model.lora.targets", "must include v_proj: the sketch reads the last layer's v_proj LoRA-B");
        var lora = new LoraSettings(Positive(c, "colm.model.lora.rank"), PositiveDouble(c, "colm.model.lora.alpha"),
            Fraction(c, "colm.model.lora.dropout"), targets);
        string tokenizer = OneOf(c, "colm.model.tokenizer", "auto", "char", "model");
        if (tokenizer == "model" && (folder.Length == 0 || PretrainedBase.UsesCharTokenizer(folder)))
            throw new ConfigException("colm.model.tokenizer", "\"model\" needs colm.model.path, a folder with its own tokenizer");
        int dim = Positive(c, "colm.model.dim"), heads = Positive(c, "colm.model.heads");
        if (dim % heads != 0 || (dim / heads) % 2 != 0)
            throw new ConfigException("colm.model.heads", $"dim {dim} must split into {heads} heads of even width (rotary pairs)");
        string adapter = Str(c, "colm.model.adapter");
        if (adapter.Length > 0 && !File.Exists(System.IO.Path.Combine(adapter, "adapter_config.json")))
            throw new ConfigException("colm.model.adapter", $"'{adapter}' is not a PEFT adapter folder (no adapter_config.json)");
        var model = new ModelSettings(modelPath, adapter, tokenizer, dim, Positive(c, "colm.model.layers"), heads,
            Positive(c, "colm.model.hidden-dim"), Positive(c, "colm.model.max-seq-len"),
            PositiveDouble(c, "colm.model.rope-theta"), Long(c, "colm.model.init-seed"), lora)
        {
            Dtype = OneOf(c, "colm.model.dtype", "float32", "bfloat16", "float16", "auto"),
            Base = modelBase,
        };

        string kind = OneOf(c, "colm.data.kind", "synthetic", "jsonl");
        string path = Str(c, "colm.data.path");
        if (kind == "jsonl" && path.Length == 0)
            throw new ConfigException("colm.data.path", "required when colm.data.kind = jsonl");
        var data = new DataSettings(kind, path,
            new JsonlFields(Str(c, "colm.data.fields.source"), Str(c, "colm.data.fields.prompt"), Str(c, "colm.data.fields.target")),
            Positive(c, "colm.data.max-length"), Positive(c, "colm.data.heldout-per-source"),
            new SyntheticMixtureSettings(Positive(c, "colm.data.synthetic.train-examples"),
                Positive(c, "colm.data.heldout-per-source"), Long(c, "colm.data.synthetic.seed"),
                OneOf(c, "colm.data.synthetic.mixture", SyntheticMixtureSettings.Skills, SyntheticMixtureSettings.Instruct, SyntheticMixtureSettings.PlantedControl)),
            OneOf(c, "colm.data.prompt-template", "auto", "alpaca", "none"))
        {
            Format = OneOf(c, "colm.data.format", "auto", "math", "classification"),
            Labels = LabelWords(c, "colm.data.labels"),
        };
        if (data.Labels.Distinct(StringComparer.OrdinalIgnoreCase).Count() != data.Labels.Count || data.Labels.Any(string.IsNullOrWhiteSpace))
            throw new ConfigException("colm.data.labels", $"label words must be distinct and non-empty, got [{string.Join(", ", data.Labels)}]");
        if (!model.IsHuggingFace && data.MaxLength > model.MaxSeqLen)
            throw new ConfigException("colm.data.max-length", $"{data.MaxLength} exceeds colm.model.max-seq-len {model.MaxSeqLen}");

        var methodNames = Enum.GetValues<SelectionMethod>().Select(SelectionMethods.Name).ToArray();
        var method = SelectionMethods.Parse(OneOf(c, "colm.selection.method", methodNames));
        var feature = OneOf(c, "colm.selection.feature", "zo", "exact", "paper") switch
        {
            "exact" => FeatureMode.Exact,
            "paper" => FeatureMode.Paper,
            _ => FeatureMode.Zo,
        };
        var weighting = OneOf(c, "colm.selection.weights", "uniform", "medoid") == "medoid" ? CoresetWeighting.Medoid : CoresetWeighting.Uniform;
        int pool = Positive(c, "colm.selection.pool"), budget = Positive(c, "colm.selection.budget");
        if (budget > pool) throw new ConfigException("colm.selection.budget", $"{budget} exceeds colm.selection.pool {pool}");
        var selection = new SelectionSettings(method, pool, budget, Positive(c, "colm.selection.probes"),
            PositiveDouble(c, "colm.selection.epsilon"), Fraction(c, "colm.selection.sparsify-fraction"),
            NonNegative(c, "colm.selection.sparsify-count"), SmallSources(c, "colm.selection.small-sources"),
            feature, weighting, Bool(c, "colm.selection.source-balancing"), Fraction(c, "colm.selection.large-source-reserve"));

        var faults = new FaultInjectionSettings(NonNegative(c, "colm.train.fault-injection.crash-at-step"),
            NonNegative(c, "colm.train.fault-injection.crash-rank"), NonNegative(c, "colm.train.fault-injection.diverge-at-step"),
            NonNegative(c, "colm.train.fault-injection.diverge-rank"), NonNegative(c, "colm.train.fault-injection.hang-at-step"),
            NonNegative(c, "colm.train.fault-injection.hang-rank"), Duration(c, "colm.train.fault-injection.hang-for"));
        var train = new TrainSettings(Positive(c, "colm.train.steps"), PositiveDouble(c, "colm.train.learning-rate"),
            NonNegativeDouble(c, "colm.train.weight-decay"), Fraction(c, "colm.train.warmup-fraction"),
            PositiveDouble(c, "colm.train.grad-clip"), NonNegative(c, "colm.train.eval-every"),
            NonNegative(c, "colm.train.checkpoint-every"), Positive(c, "colm.train.keep-checkpoints"),
            Positive(c, "colm.train.checksum-every"), NonNegative(c, "colm.train.stop-at-step"),
            Positive(c, "colm.train.trainers"), NonNegative(c, "colm.train.threads-per-trainer"), faults)
        {
            MaxFailures = NonNegative(c, "colm.train.max-failures"),
            MinTrainers = Positive(c, "colm.train.min-trainers"),
            MaxTrainers = NonNegative(c, "colm.train.max-trainers"),
        };
        if (train.MaxTrainers > 0 && train.MaxTrainers < train.MinTrainers)
            throw new ConfigException("colm.train.max-trainers", $"{train.MaxTrainers} is below colm.train.min-trainers = {train.MinTrainers}");
        if (faults.CrashAtStep > 0 && faults.CrashRank >= train.Trainers)
            throw new ConfigException("colm.train.fault-injection.crash-rank", $"{faults.CrashRank} is not a rank of {train.Trainers} trainers");
        if (faults.HangAtStep > 0 && faults.HangRank >= train.Trainers)
            throw new ConfigException("colm.train.fault-injection.hang-rank", $"{faults.HangRank} is not a rank of {train.Trainers} trainers");
        if (faults.DivergeAtStep > 0 && faults.DivergeRank >= train.Trainers)
            throw new ConfigException("colm.train.fault-injection.diverge-rank", $"{faults.DivergeRank} is not a rank of {train.Trainers} trainers");

        var cluster = new ClusterSettings(Str(c, "colm.cluster.hostname"), Str(c, "colm.cluster.public-hostname"),
            NonNegative(c, "colm.cluster.port"), SeedNodes(c, "colm.cluster.seed-nodes"), Roles(c, "colm.cluster.roles"),
            Devices(c, "colm.cluster.devices"), Duration(c, "colm.cluster.join-timeout"),
            Duration(c, "colm.cluster.phase-timeout"), Duration(c, "colm.cluster.collective-timeout"))
        {
            RestartGrace = Duration(c, "colm.cluster.restart-grace"),
            MembershipWait = Duration(c, "colm.cluster.membership-wait"),
            HeartbeatInterval = Duration(c, "colm.cluster.heartbeat-interval"),
            HangTimeout = Duration(c, "colm.cluster.hang-timeout"),
        };
        if (cluster.Hostname is "0.0.0.0" or "::" && cluster.PublicHostname.Length == 0)
            throw new ConfigException("colm.cluster.public-hostname",
                $"required when colm.cluster.hostname is {cluster.Hostname}: peers need an address they can reach (--public-host)");
        var telemetry = new TelemetrySettings(Exporters(c, "colm.telemetry.exporter"),
            Str(c, "colm.telemetry.file"), Duration(c, "colm.telemetry.metric-interval"),
            Bool(c, "colm.telemetry.http"), NonEmpty(c, "colm.telemetry.http-host"), Port(c, "colm.telemetry.http-port"),
            Str(c, "colm.telemetry.otlp-endpoint").Trim());

        var pretrain = new PretrainSettings(Positive(c, "colm.pretrain.steps"), Positive(c, "colm.pretrain.batch-size"),
            PositiveDouble(c, "colm.pretrain.learning-rate"), Long(c, "colm.pretrain.corpus-seed"));

        return new ColmSettings(run, model, data, selection, train, cluster, telemetry) { Pretrain = pretrain };
    }

    private static T Get<T>(Config c, string path, string expected, Func<T> read)
    {
        if (!c.HasPath(path)) throw new ConfigException(path, "missing");
        try
        {
            return read();
        }
        catch (Exception e) when (e is not ConfigException)
        {
            string raw;
            try { raw = c.GetValue(path).ToString(); } catch { raw = "?"; }
            throw new ConfigException(path, $"expected {expected}, got '{raw.Trim()}'");
        }
    }

    private static string Str(Config c, string p) => Get(c, p, "a string", () =>
    {
        var v = c.GetValue(p);
        if (v.IsObject() || v.IsArray()) throw new FormatException();
        return v.GetString() ?? "";
    });

    private static long Long(Config c, string p) => Get(c, p, "an integer", () => long.Parse(Str(c, p).Trim(), System.Globalization.CultureInfo.InvariantCulture));

    private static int Int(Config c, string p) => Get(c, p, "an integer", () => int.Parse(Str(c, p).Trim(), System.Globalization.CultureInfo.InvariantCulture));

    private static double Double(Config c, string p) => Get(c, p, "a number", () =>
    {
        double d = double.Parse(Str(c, p).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        if (!double.IsFinite(d)) throw new FormatException();
        return d;
    });

    private static int Positive(Config c, string p) =>
        Int(c, p) is var v && v > 0 ? v : throw new ConfigException(p, $"must be > 0, got {v}");

    private static int NonNegative(Config c, string p) =>
        Int(c, p) is var v && v >= 0 ? v : throw new ConfigException(p, $"must be >= 0, got {v}");

    private static double PositiveDouble(Config c, string p) =>
        Double(c, p) is var v && v > 0 ? v : throw new ConfigException(p, $"must be > 0, got {v}");

    private static double NonNegativeDouble(Config c, string p) =>
        Double(c, p) is var v && v >= 0 ? v : throw new ConfigException(p, $"must be >= 0, got {v}");

    private static double Fraction(Config c, string p) =>
        Double(c, p) is var v && v is >= 0 and <= 1 ? v : throw new ConfigException(p, $"must be between 0 and 1, got {v}");

    private static bool Bool(Config c, string p) => Get(c, p, "on / off (or true / false)", () => Str(c, p).Trim() switch
    {
        "on" or "true" or "yes" => true,
        "off" or "false" or "no" => false,
        _ => throw new FormatException(),
    });

    private static TimeSpan Duration(Config c, string p) => Get(c, p, "a duration such as 30s", () =>
    {
        var t = c.GetTimeSpan(p, null, allowInfinite: false);
        return t > TimeSpan.Zero ? t : throw new FormatException();
    });

    private static string OneOf(Config c, string p, params string[] allowed)
    {
        string v = Str(c, p);
        return allowed.Contains(v) ? v : throw new ConfigException(p, $"'{v}' is not one of {string.Join(" | ", allowed)}");
    }

    /// <summary>"none" or a comma-separated list of telemetry exporters; returned normalised ("file,prometheus").</summary>
    private static string Exporters(Config c, string p)
    {
        string v = Str(c, p);
        try
        {
            var names = CoLM.Telemetry.TelemetryOptions.ParseExporters(v);
            return names.Count == 0 ? CoLM.Telemetry.TelemetryOptions.NoneExporter : string.Join(',', names);
        }
        catch (ArgumentException)
        {
            throw new ConfigException(p, $"'{v}' is not none or a comma-separated list of {string.Join(", ",
                CoLM.Telemetry.TelemetryOptions.Exporters.Where(e => e != CoLM.Telemetry.TelemetryOptions.NoneExporter))}");
        }
    }

    private static string NonEmpty(Config c, string p) =>
        Str(c, p).Trim() is { Length: > 0 } v ? v : throw new ConfigException(p, "must not be empty");

    private static int Port(Config c, string p) =>
        Int(c, p) is var v && v is >= 1 and <= 65535 ? v : throw new ConfigException(p, $"must be a TCP port (1-65535), got {v}");

    private static IReadOnlyList<string> StrList(Config c, string p) => Get(c, p, "a list of strings", () =>
    {
        var v = c.GetValue(p);
        if (HoconWriter.IsEmptyList(v)) return (IReadOnlyList<string>)[];
        if (!v.IsArray()) throw new FormatException();
        return (IReadOnlyList<string>)v.GetArray().Select(x => x.GetString()).ToArray();
    });

    /// <summary>"host:port" entries; the Akka address is built from them at start.</summary>
    private static IReadOnlyList<string> SeedNodes(Config c, string p)
    {
        var seeds = StrList(c, p);
        foreach (var seed in seeds)
        {
            int colon = seed.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(seed.AsSpan(colon + 1), out int port) || port is < 1 or > 65535)
                throw new ConfigException(p, $"'{seed}' is not host:port (e.g. 10.0.0.1:2551)");
        }
        return seeds;
    }

    private static IReadOnlyList<string> Roles(Config c, string p)
    {
        var roles = StrList(c, p);
        foreach (var role in roles)
            if (role is not (ClusterSettings.CoordinatorRole or ClusterSettings.TrainerRole))
                throw new ConfigException(p, $"unknown role '{role}'; expected coordinator and/or trainer");
        if (roles.Count == 0) throw new ConfigException(p, "a node needs at least one role: coordinator and/or trainer");
        return roles;
    }

    private static DeviceSpec Devices(Config c, string p)
    {
        var spec = DeviceSpec.TryParse(Str(c, p), out string error) ?? throw new ConfigException(p, $"'{Str(c, p)}': {error}");
        if (spec.IsCuda)
            throw new ConfigException(p, $"'{spec}': trainer replicas run on the CPU only in this version (GPU placement is not implemented yet); use cpu:N");
        return spec;
    }

    /// <summary>A list of label words, or "" for none (HOCON's empty list does not read back as a list).</summary>
    private static IReadOnlyList<string> LabelWords(Config c, string p)
    {
        var v = c.GetValue(p);
        if (v.IsArray()) return StrList(c, p);
        string s = Str(c, p);
        return s.Length == 0 ? [] : throw new ConfigException(p, $"expected a list of label words such as [no, yes], got '{s}'");
    }

    private static IReadOnlyList<string>? SmallSources(Config c, string p)
    {
        var v = c.GetValue(p);
        if (v.IsArray()) return StrList(c, p);
        string s = Str(c, p);
        return s == "auto" ? null : throw new ConfigException(p, $"expected \"auto\" or a list of source names, got '{s}'");
    }
}
