using CoLM.Cluster.Configuration;

namespace CoLM.Cli;

/// <summary>The parsed command line: a verb path (e.g. "train", "bench step") and its options.</summary>
public sealed record CommandLine(string Verb, IReadOnlyList<string> ConfigFiles, IReadOnlyList<string> Sets,
    string? Resume, bool Quiet, bool Help, IReadOnlyDictionary<string, string> Options, IReadOnlyList<string> Arguments)
{
    public static CommandLine Parse(IReadOnlyList<string> args)
    {
        var verb = new List<string>();
        var configs = new List<string>();
        var sets = new List<string>();
        string? resume = null;
        bool quiet = false, help = false;
        var options = new Dictionary<string, string>();
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            string Value()
            {
                if (i + 1 >= args.Count) throw new UsageException($"{a} needs a value");
                return args[++i];
            }
            switch (a)
            {
                case "--config": configs.Add(Value()); break;
                case "--set": sets.Add(Value()); break;
                case "--resume": resume = Value(); break;
                // Shorthands for the two settings every real fine-tuning run sets.
                case "--model": sets.Add("colm.model.path=" + Value()); break;
                case "--data":
                    sets.Add("colm.data.kind=jsonl");
                    sets.Add("colm.data.path=" + Value());
                    break;
                case "--quiet" or "-q": quiet = true; break;
                case "--help" or "-h": help = true; break;
                // Options of `bench quality`.
                case "--methods" or "--seeds" or "--out" or "--target-loss" or "--lr": options[a[2..]] = Value(); break;
                // Options of `eval`.
                case "--max-new-tokens" or "--task" or "--labels" or "--dtype": options[a[2..]] = Value(); break;
                case "--adapter": sets.Add("colm.model.adapter=" + Value()); break;
                // `colm node`: shorthands for colm.cluster.*; lists are comma-separated.
                case "--seed-nodes": sets.Add("colm.cluster.seed-nodes=" + HoconList(Value())); break;
                case "--roles": sets.Add("colm.cluster.roles=" + HoconList(Value())); break;
                case "--host": sets.Add("colm.cluster.hostname=" + HoconSources.Quote(Value())); break;
                case "--public-host": sets.Add("colm.cluster.public-hostname=" + HoconSources.Quote(Value())); break;
                case "--port": sets.Add("colm.cluster.port=" + Value()); break;
                case "--devices": sets.Add("colm.cluster.devices=" + HoconSources.Quote(Value())); break;
                // `colm train --cluster HOST:PORT`, `colm launch --nodes N --coordinators K`.
                case "--cluster" or "--nodes" or "--coordinators": options[a[2..]] = Value(); break;
                // Options of `bench allreduce`.
                case "--ranks" or "--sizes" or "--iterations" or "--segment-kib": options[a[2..]] = Value(); break;
                // Option of `bench cluster`.
                case "--rounds": options[a[2..]] = Value(); break;
                // Options of `bench matching`.
                case "--every" or "--pools": options[a[2..]] = Value(); break;
                case "--no-in-process": options["no-in-process"] = ""; break;
                // Set by `colm launch` on the nodes it starts: they ignore Ctrl-C (the launcher
                // stops them) and exit when the launcher's end of their stdin closes.
                case "--managed": options["managed"] = "true"; break;
                default:
                    if (a.StartsWith("--set=", StringComparison.Ordinal)) sets.Add(a["--set=".Length..]);
                    else if (a.StartsWith("--config=", StringComparison.Ordinal)) configs.Add(a["--config=".Length..]);
                    else if (a.StartsWith('-')) throw new UsageException($"unknown option '{a}'");
                    else verb.Add(a);
                    break;
            }
        }
        // `bench` and `data` take a sub-command; whatever follows the verb is an argument (a file, a run directory).
        int verbWords = verb.Count > 0 && verb[0] is "bench" or "data" ? Math.Min(2, verb.Count) : Math.Min(1, verb.Count);
        return new CommandLine(string.Join(' ', verb.Take(verbWords)), configs, sets, resume, quiet, help, options, verb.Skip(verbWords).ToArray());
    }

    private static string HoconList(string commaSeparated) =>
        "[" + string.Join(", ", commaSeparated.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(HoconSources.Quote)) + "]";
}

public sealed class UsageException(string message) : Exception(message);
