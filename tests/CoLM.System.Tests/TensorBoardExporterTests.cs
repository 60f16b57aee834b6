using System.Buffers.Binary;
using System.Text.Json;

namespace CoLM.System.Tests;

/// <summary>
/// The tensorboard exporter's event files, read back as TensorBoard reads them: TFRecord framing
/// (length, masked CRC-32C of the length, the record, masked CRC-32C of the record, each checked
/// here) around Event protobufs parsed with TensorBoard's own schema (the generated classes
/// TorchSharp ships). PyPI, and so TensorBoard itself, cannot be installed on this machine.
/// </summary>
public sealed class TensorBoardExporterTests : IDisposable
{
    private readonly TinyRun _tiny = new();

    public void Dispose() => _tiny.Dispose();

    [Fact]
    public async Task Event_files_hold_the_runs_scalars_as_metrics_jsonl_has_them()
    {
        var result = await _tiny.TrainAsync("tb", "colm.train.steps=30", "colm.train.eval-every=10", "colm.telemetry.exporter=tensorboard");
        Assert.Equal("completed", result.State);
        var run = _tiny.RunPath("tb");

        var scalars = new Dictionary<string, List<(long Step, float Value)>>();
        string file = Assert.Single(Directory.GetFiles(Path.Combine(run, "tensorboard"), "events.out.tfevents.*"));
        var events = ReadRecords(File.ReadAllBytes(file)).Select(Tensorboard.Event.Parser.ParseFrom).ToArray();
        Assert.Equal("brain.Event:2", events[0].FileVersion);
        foreach (var e in events.Where(e => e.Summary is not null))
            foreach (var v in e.Summary.Value)
            {
                if (!scalars.TryGetValue(v.Tag, out var list)) scalars[v.Tag] = list = [];
                list.Add((e.Step, v.SimpleValue));
            }

        var rows = File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        var steps = rows.Where(r => r.GetProperty("kind").GetString() == "step").ToArray();
        Assert.Equal(steps.Select(r => (r.GetProperty("step").GetInt64(), (float)r.GetProperty("loss").GetDouble())), scalars["train/loss"]);
        Assert.Equal(steps.Select(r => (r.GetProperty("step").GetInt64(), (float)r.GetProperty("gradNorm").GetDouble())), scalars["train/grad_norm"]);
        var evals = rows.Where(r => r.GetProperty("kind").GetString() == "eval").ToArray();
        Assert.Equal(evals.Select(r => (r.GetProperty("step").GetInt64(), (float)r.GetProperty("meanLoss").GetDouble())), scalars["eval/mean_loss"]);
        Assert.Equal(evals.Length, scalars["eval/loss/arith.add"].Count);
        Assert.Contains("time/phase/sketch", scalars.Keys);
    }

    /// <summary>TFRecord: u64 length, u32 masked CRC-32C of those 8 bytes, the record, u32 masked CRC-32C of the record (little-endian).</summary>
    private static IEnumerable<byte[]> ReadRecords(byte[] bytes)
    {
        int at = 0;
        while (at < bytes.Length)
        {
            var length = bytes.AsSpan(at, 8);
            Assert.Equal(MaskedCrc32C(length), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 8, 4)));
            int n = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(length));
            var record = bytes.AsSpan(at + 12, n).ToArray();
            Assert.Equal(MaskedCrc32C(record), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 12 + n, 4)));
            yield return record;
            at += 12 + n + 4;
        }
    }

    private static uint MaskedCrc32C(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        }
        crc = ~crc;
        return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u;
    }
}
