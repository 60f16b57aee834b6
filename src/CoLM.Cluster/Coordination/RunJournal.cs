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
/// cache), and where the trainers are. <paramref name="RunId"/> ties it to one submission.
/// </summary>
public sealed record RunJournalEntry(string RunId, byte[] State, ImmutableArray<JournaledMessage> LastSent, ImmutableArray<JournaledTrainer> Trainers);

/// <summary>
/// The coordinator's write-ahead journal in the run directory (shared storage, which every
/// coordinator-role node already needs for checkpoints): written before each batch of messages
/// leaves while another coordinator-role node is up, so a successor continues from exactly what was sent. Chosen over
/// replicating the state to a standby because it needs no second protocol and survives the loss
/// of any node; the price is a small file write per batch (2-3 per step).
/// <para>Written to a temporary name and renamed over the old one: a coordinator killed mid-write
/// leaves the previous entry. Not fsynced: a process crash keeps the page cache; after a machine
/// crash the run resumes from its last checkpoint instead.</para>
/// </summary>
public static class RunJournal
{
    public const string FileName = "coordinator-journal.json";

    public static string PathIn(RunDirectory run) => System.IO.Path.Combine(run.Path, FileName);

    public static void Write(RunDirectory run, RunJournalEntry entry)
    {
        var path = PathIn(run);
        var tmp = path + ".tmp";
        File.WriteAllBytes(tmp, JsonSerializer.SerializeToUtf8Bytes(entry));
        File.Move(tmp, path, overwrite: true);
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
