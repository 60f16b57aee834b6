using System.Collections.Immutable;
using System.Text.Json;
using CoLM.Cluster.Runs;

namespace CoLM.Cluster.Coordination;

/// <summary>A message the coordinator sent, as its serializer wrote it, and to whom.</summary>
public sealed record JournaledMessage(string Node, int LocalIndex, int SerializerId, string Manifest, byte[] Bytes);

/// <summary>A registered trainer's actor, by its full path (with the node's address).</summary>
public sealed record JournaledTrainer(string Node, int LocalIndex, string ActorPath);

/// <summary>
/// What a coordinator that takes over needs: the run state (<see cref="RunStateCodec"/> bytes),
/// the last batch of messages sent (to send again: trainers answer a repeated request from their
/// cache), and where the trainers are. <paramref name="RunId"/> ties it to one submission;
/// <paramref name="Epoch"/> is the writing coordinator's (its successor's is one more).
/// </summary>
public sealed record RunJournalEntry(string RunId, long Epoch, byte[] State, ImmutableArray<JournaledMessage> LastSent, ImmutableArray<JournaledTrainer> Trainers);

/// <summary>
/// The coordinator's write-ahead journal in the run directory (shared storage, which every
/// coordinator-role node already needs for checkpoints): written before each batch of messages
/// leaves while another coordinator-role node is up, so a successor continues from exactly what was sent. Chosen over
/// replicating the state to a standby because it needs no second protocol and survives the loss
/// of any node; the price is a small file write per batch (2-3 per step).
/// <para>Written to a temporary name and renamed over the old one: a coordinator killed mid-write
/// leaves the previous entry. Not fsynced: a process crash keeps the page cache; after a machine
/// crash the run resumes from its last checkpoint instead.</para>
/// <para>Fencing: a successor first claims its epoch (<see cref="Claim"/>, the file
/// `coordinator-epoch`), then reads the journal; a coordinator writes its entry, then checks that
/// no newer epoch is claimed (<see cref="IsSuperseded"/>), and only then sends. Either the check
/// comes before the claim, and the successor reads that entry (the batch it resends is the one
/// sent), or after it, and the batch is never sent. So a coordinator that was taken over from and
/// still runs never sends anything its successor does not know of.</para>
/// </summary>
public static class RunJournal
{
    public const string FileName = "coordinator-journal.json";
    public const string EpochFileName = "coordinator-epoch";

    public static string PathIn(RunDirectory run) => System.IO.Path.Combine(run.Path, FileName);

    public static void Write(RunDirectory run, RunJournalEntry entry)
    {
        var path = PathIn(run);
        var tmp = path + ".tmp";
        File.WriteAllBytes(tmp, JsonSerializer.SerializeToUtf8Bytes(entry));
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>Claims <paramref name="epoch"/> of submission <paramref name="runId"/> for the coordinator taking over: from now on, coordinators of older epochs stop sending.</summary>
    public static void Claim(RunDirectory run, string runId, long epoch)
    {
        var path = System.IO.Path.Combine(run.Path, EpochFileName);
        File.WriteAllText(path + ".tmp", $"{runId} {epoch.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
        File.Move(path + ".tmp", path, overwrite: true);
    }

    /// <summary>Whether a coordinator of submission <paramref name="runId"/> with a newer epoch than <paramref name="epoch"/> has claimed the run.</summary>
    public static bool IsSuperseded(RunDirectory run, string runId, long epoch)
    {
        var path = System.IO.Path.Combine(run.Path, EpochFileName);
        if (!File.Exists(path)) return false;
        var claim = File.ReadAllText(path).Split(' ');
        return claim.Length == 2 && claim[0] == runId
               && long.TryParse(claim[1], System.Globalization.CultureInfo.InvariantCulture, out long claimed) && claimed > epoch;
    }

    /// <summary>The entry of run <paramref name="runId"/>, or null when this submission has none (a new run, or another submission's file).</summary>
    public static RunJournalEntry? Read(RunDirectory run, string runId)
    {
        var path = PathIn(run);
        if (!File.Exists(path)) return null;
        RunJournalEntry? entry;
        try
        {
            entry = JsonSerializer.Deserialize<RunJournalEntry>(File.ReadAllBytes(path));
        }
        catch (JsonException e)
        {
            throw new RunDirectoryException(path, $"the coordinator's journal is unreadable ({e.Message}); the run cannot be taken over, resume it from its last checkpoint");
        }
        return entry is not null && entry.RunId == runId ? entry : null;
    }
}
