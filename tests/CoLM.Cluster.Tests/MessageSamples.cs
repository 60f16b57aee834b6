using System.Collections;
using System.Collections.Immutable;
using Akka.Actor;
using CoLM.Cluster.Actors;
using CoLM.Cluster.Runs;
using CoLM.Training;

namespace CoLM.Cluster.Tests;

/// <summary>Non-trivial values of every cluster message, and a field-by-field comparison for them.</summary>
internal static class MessageSamples
{
    public const string Unicode = "Ünïcødé ✓ 日本語 🚀 \"quoted\" \\ \n tab\t";

    /// <summary>A quiet NaN with a payload: only a bit-for-bit copy keeps it.</summary>
    public static readonly float OddNaN = BitConverter.Int32BitsToSingle(0x7FC0_1234);

    public static readonly ImmutableArray<float> AwkwardFloats =
        [1.5f, -0f, float.NaN, OddNaN, float.PositiveInfinity, float.NegativeInfinity, float.Epsilon, float.MaxValue, -3.25e-7f];

    public static IEnumerable<Type> ClusterMessageTypes() =>
        typeof(IClusterMessage).Assembly.GetTypes()
            .Where(t => typeof(IClusterMessage).IsAssignableFrom(t) && t is { IsInterface: false, IsAbstract: false })
            .OrderBy(t => t.FullName, StringComparer.Ordinal);

    public static Sketches Sketches(int examples, int probes)
    {
        var ids = Enumerable.Range(0, examples).Select(i => 1000 + 7 * i).ToImmutableArray();
        var losses = Enumerable.Range(0, examples).Select(i => i == 3 ? float.NaN : 0.5f + i / 10f).ToImmutableArray();
        var coefficients = Enumerable.Range(0, examples * probes).Select(i => MathF.Sin(i) * 1e-3f).ToImmutableArray();
        return new Sketches(12, 345, 1, ids, losses, coefficients, ImmutableArray<float>.Empty, TimeSpan.FromMilliseconds(12.3456));
    }

    /// <summary>At least one sample per message type; several where optional parts can be absent.</summary>
    public static IReadOnlyList<IClusterMessage> All(IActorRef actor)
    {
        var phases = new Dictionary<string, double> { ["train"] = 0.25, ["select"] = double.NaN, ["sketch"] = double.PositiveInfinity, ["é"] = -0.0 };
        var selected = new Dictionary<string, int> { ["math"] = 5, ["code"] = 0, [Unicode] = int.MinValue };
        var sources = new Dictionary<string, SourceScore> { ["math"] = new(32, 0.5, 1.25), ["code"] = new(0, double.NaN, double.NegativeInfinity) };
        var before = new EvalReport(0, sources, 0.25, 2.5);
        var after = new EvalReport(100, new Dictionary<string, SourceScore>(), double.NaN, 0.0);
        var stepReport = new StepReport(7, 100, 1.75, 3e-4, 16, 123.5, TimeSpan.FromSeconds(1.5), TimeSpan.FromMinutes(2), phases, selected);

        return
        [
            new PoolAssignment(3, 17, [5, 9, int.MaxValue, -1], SketchKind.Exact, long.MinValue, 64),
            new PoolAssignment(0, 0, ImmutableArray<int>.Empty, SketchKind.LossOnly, 0, 0),
            new TrainAssignment(3, 17, [1, 2, 3], AwkwardFloats[..3], 15.5, true),
            new TrainAssignment(1, 2, ImmutableArray<int>.Empty, ImmutableArray<float>.Empty, double.NaN, false),
            new EvalAssignment(2, 40, [7, 8, 9]),
            new Synchronise(4, 2, 0, "ckpt/step-00010/state.bin", ["127.0.0.1:5000", Unicode, ""]),
            new Synchronise(4, 0, 0, null, ImmutableArray<string>.Empty),
            new SaveState(1, 10, "run/ckpt/" + Unicode, "run/adapter"),
            new RegisterTrainer(actor, "akka.tcp://colm@127.0.0.1:4053", 3, "tcp://10.0.0.2:7000"),
            new TrainerRestarted(actor, "node-b", 1, "CUDA error: " + Unicode),
            Sketches(5, 3) with { Features = AwkwardFloats, Losses = AwkwardFloats[..5] },
            new StepDone(9, 99, 2, new TrainOutcome(12.5, 16, TimeSpan.FromTicks(1), TimeSpan.Zero, TimeSpan.MaxValue, ulong.MaxValue)),
            new StepDone(9, 99, 0, new TrainOutcome(double.NaN, 0, TimeSpan.MinValue, TimeSpan.FromSeconds(3), TimeSpan.FromMilliseconds(1), null)),
            new StepFailed(5, 6, 1, "peer gone: " + Unicode, true, [0, 2]),
            new StepFailed(5, 6, 0, "aborted", false, ImmutableArray<int>.Empty),
            new InspectReplica(7, 1),
            new ReplicaInspected(7, 1, true, 42, ulong.MaxValue),
            new ReplicaInspected(7, 0, false, -1, 0),
            new EvalDone(2, 40, 1, [7, 8, 9], new EvalOutcome([0.5f, float.NaN, OddNaN], [true, false, true])),
            new EvalDone(2, 40, 0, ImmutableArray<int>.Empty, new EvalOutcome([], [])),
            new Synchronised(8, 3, 1234, 0xDEAD_BEEF_CAFE_F00D, 2048),
            new StateSaved(8, 1234, 0),
            new StopRequested("interrupted"),
            DescribeNode.Instance,
            new NodeDescription("akka.tcp://colm@10.0.0.1:4053", ["coordinator", "trainer"], 4, "cuda:0,cuda:1", "run-7"),
            new NodeDescription("n", ImmutableArray<string>.Empty, 0, "", null),
            new SubmitRun("run-" + Unicode, "colm { train.steps = 10 }\n" + Unicode, "/shared/runs/x", "/shared/runs/x/ckpt", actor),
            new SubmitRun("r", "", "d", null, actor),
            new RunAccepted("r", "node-a", 2),
            new RunRefused("r", "node-b", "another run is active"),
            new EndRun("r"),
            new ShutdownNode("launch finished"),
            new RunStepReported("r", stepReport),
            new RunEvaluated("r", before),
            new RunEvaluated("r", after),
            new RunNotice("r", Unicode),
            new RunEnded("r", new RunResult("completed", 100, "/runs/r", before, after, null)),
            new RunEnded("r", new RunResult("failed", 3, "/runs/r", null, null, "boom: " + Unicode, BadInput: true)),
        ];
    }

    /// <summary>
    /// Field-by-field equality for messages: records holding ImmutableArray or dictionaries have no
    /// structural equality of their own. Floats and doubles are compared bit for bit.
    /// </summary>
    public static void AssertSameContents(object? expected, object? actual, string path = "message")
    {
        if (expected is null || actual is null)
        {
            Assert.True(expected is null && actual is null, $"{path}: expected {expected ?? "null"}, got {actual ?? "null"}");
            return;
        }
        switch (expected)
        {
            case float f:
                Assert.True(BitConverter.SingleToInt32Bits(f) == BitConverter.SingleToInt32Bits(Assert.IsType<float>(actual)),
                    $"{path}: expected float bits {BitConverter.SingleToInt32Bits(f):X8}, got {BitConverter.SingleToInt32Bits((float)actual):X8}");
                return;
            case double d:
                Assert.True(BitConverter.DoubleToInt64Bits(d) == BitConverter.DoubleToInt64Bits(Assert.IsType<double>(actual)),
                    $"{path}: expected {d:R}, got {actual}");
                return;
            case string or bool or int or long or ulong or TimeSpan or Enum:
                Assert.True(expected.Equals(actual), $"{path}: expected {expected}, got {actual}");
                return;
            case IActorRef actorRef:
                Assert.True(actorRef.Equals(actual), $"{path}: expected {actorRef}, got {actual}");
                return;
            case IDictionary dictionary:
                var other = Assert.IsAssignableFrom<IDictionary>(actual);
                Assert.True(dictionary.Count == other.Count, $"{path}: expected {dictionary.Count} entries, got {other.Count}");
                foreach (DictionaryEntry entry in dictionary)
                {
                    Assert.True(other.Contains(entry.Key), $"{path}: key '{entry.Key}' missing");
                    AssertSameContents(entry.Value, other[entry.Key], $"{path}[{entry.Key}]");
                }
                return;
        }

        var type = expected.GetType();
        Assert.True(type == actual.GetType(), $"{path}: expected a {type.Name}, got a {actual.GetType().Name}");
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(ImmutableArray<>))
        {
            bool expectedDefault = (bool)type.GetProperty("IsDefault")!.GetValue(expected)!;
            bool actualDefault = (bool)type.GetProperty("IsDefault")!.GetValue(actual)!;
            Assert.True(expectedDefault == actualDefault, $"{path}: IsDefault {expectedDefault} vs {actualDefault}");
            if (expectedDefault) return;
        }
        if (expected is IEnumerable sequence)
        {
            var left = sequence.Cast<object?>().ToList();
            var right = ((IEnumerable)actual).Cast<object?>().ToList();
            Assert.True(left.Count == right.Count, $"{path}: expected {left.Count} elements, got {right.Count}");
            for (int i = 0; i < left.Count; i++) AssertSameContents(left[i], right[i], $"{path}[{i}]");
            return;
        }
        var properties = type.GetProperties(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance);
        Assert.True(properties.Length > 0 || type == typeof(DescribeNode), $"{path}: don't know how to compare a {type.Name}");
        foreach (var property in properties)
            AssertSameContents(property.GetValue(expected), property.GetValue(actual), $"{path}.{property.Name}");
    }
}
