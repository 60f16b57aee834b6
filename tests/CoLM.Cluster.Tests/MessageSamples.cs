using System.Collections;
using System.Collections.Immutable;
using Akka.Actor;
using CoLM.Cluster.Actors;
using CoLM.Cluster.Runs;
using CoLM.Cluster.Serialization;
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

    /// <summary>
    /// Two samples of every registered message, made from its declaration alone (no hand-kept
    /// list): one with every field at an awkward value (NaN payloads, extreme integers, Unicode,
    /// nested records, several dictionary entries), one with every optional part absent and every
    /// collection empty. A new message or field is covered as soon as it is declared.
    /// </summary>
    public static IReadOnlyList<IClusterMessage> All(IActorRef actor) =>
        [.. ColmMessageSerializer.Manifests.Keys.OrderBy(t => t.FullName, StringComparer.Ordinal)
            .SelectMany(t => new[] { (IClusterMessage)Make(t, full: true, actor, 0)!, (IClusterMessage)Make(t, full: false, actor, 0)! })];

    private static readonly double[] AwkwardDoubles = [-0.0, double.NaN, double.PositiveInfinity, 1.5e-300, double.MaxValue];

    /// <summary>A value of <paramref name="type"/>; <paramref name="salt"/> makes neighbouring fields differ, so a swapped pair is caught.</summary>
    public static object? Make(Type type, bool full, IActorRef actor, int salt, bool nullable = false)
    {
        if (type == typeof(long)) return full ? long.MinValue + 977L * (salt + 1) : 0L;
        if (type == typeof(int)) return full ? int.MaxValue - 31 * salt : 0;
        if (type == typeof(ulong)) return full ? ulong.MaxValue - 13UL * (ulong)salt : 0UL;
        if (type == typeof(double)) return full ? AwkwardDoubles[salt % AwkwardDoubles.Length] : 0.0;
        if (type == typeof(bool)) return full;
        if (type == typeof(TimeSpan)) return full ? TimeSpan.FromTicks(123_456_789L + salt) : TimeSpan.Zero;
        if (type == typeof(ulong?)) return full ? ulong.MaxValue - (ulong)salt : null;
        if (type.IsEnum) return full ? Enum.GetValues(type).Cast<object>().Last() : Enum.GetValues(type).Cast<object>().First();
        if (type == typeof(string)) return full ? $"{Unicode} #{salt}" : nullable ? null : "";
        if (type == typeof(ImmutableArray<int>)) return full ? ImmutableArray.Create(5, int.MaxValue, -1, salt) : ImmutableArray<int>.Empty;
        if (type == typeof(ImmutableArray<float>)) return full ? AwkwardFloats : ImmutableArray<float>.Empty;
        if (type == typeof(ImmutableArray<string>)) return full ? ImmutableArray.Create("a", Unicode, "") : ImmutableArray<string>.Empty;
        if (type == typeof(float[])) return full ? AwkwardFloats.ToArray() : Array.Empty<float>();
        if (type == typeof(bool[])) return full ? new[] { true, false, true } : Array.Empty<bool>();
        if (type == typeof(IActorRef)) return actor;
        // An envelope's message: a full one with every field awkward, or the smallest there is.
        if (type == typeof(IClusterMessage)) return full ? Make(typeof(TrainAssignment), full: true, actor, salt) : RegisterAgain.Instance;
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IReadOnlyDictionary<,>))
        {
            var valueType = type.GetGenericArguments()[1];
            var dictionary = (IDictionary)Activator.CreateInstance(typeof(Dictionary<,>).MakeGenericType(typeof(string), valueType))!;
            if (full)
                foreach (var (key, i) in new[] { ("b", 1), (Unicode, 2), ("a", 3) })
                    dictionary.Add(key, Make(valueType, full: true, actor, salt + i));
            return dictionary;
        }
        if (type.IsClass)
        {
            if (!full && nullable) return null;
            var instance = type.GetProperty("Instance", System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static);
            var constructor = type.GetConstructors().Where(c => !(c.GetParameters() is [var only] && only.ParameterType == type))
                .OrderByDescending(c => c.GetParameters().Length).First();
            if (constructor.GetParameters().Length == 0 && instance is not null) return instance.GetValue(null);
            var context = new System.Reflection.NullabilityInfoContext();
            return constructor.Invoke([.. constructor.GetParameters().Select((p, i) => Make(p.ParameterType, full, actor, salt * 7 + i,
                !p.ParameterType.IsValueType && context.Create(p).WriteState == System.Reflection.NullabilityState.Nullable))]);
        }
        throw new InvalidOperationException($"no sample value for {type.Name}: teach MessageSamples.Make");
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
        Assert.True(properties.Length > 0 || type == typeof(DescribeNode) || type == typeof(ReplayLastReply) || type == typeof(RegisterAgain), $"{path}: don't know how to compare a {type.Name}");
        foreach (var property in properties)
            AssertSameContents(property.GetValue(expected), property.GetValue(actual), $"{path}.{property.Name}");
    }
}
