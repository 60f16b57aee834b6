using System.Collections;
using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Reflection;
using Akka.Actor;

namespace CoLM.Cluster.Serialization;

/// <summary>
/// A message's wire layout, derived from its declaration: the parameters of the record's primary
/// constructor, in order, each written as its type says (<see cref="FieldCodec.For"/>). Adding a
/// field to a message is one edit, to the record; the serializer, its size hint and the
/// round-trip tests follow. Reference types are required unless declared nullable (string?,
/// EvalReport?): a required null is refused on the way out, naming the field.
/// </summary>
internal sealed class MessageLayout
{
    private static readonly ConcurrentDictionary<Type, MessageLayout> Cache = new();
    private readonly Type _type;
    private readonly ConstructorInfo? _constructor;
    private readonly (string Name, PropertyInfo Property, FieldCodec Codec)[] _fields;
    private readonly object? _singleton;

    private MessageLayout(Type type)
    {
        _type = type;
        // Records have their primary constructor and a copy constructor: take the widest other.
        _constructor = type.GetConstructors(BindingFlags.Public | BindingFlags.Instance)
            .Where(c => !(c.GetParameters() is [var only] && only.ParameterType == type))
            .OrderByDescending(c => c.GetParameters().Length).FirstOrDefault()
            ?? throw new InvalidOperationException($"{type.Name} has no public constructor to read it back with");
        // A message without fields that keeps one shared instance (DescribeNode.Instance) reads back as that instance.
        if (_constructor.GetParameters().Length == 0 && type.GetProperty("Instance", BindingFlags.Public | BindingFlags.Static) is { } instance
            && instance.PropertyType == type)
        {
            _singleton = instance.GetValue(null);
            _fields = [];
            return;
        }
        var nullability = new NullabilityInfoContext();
        _fields = _constructor.GetParameters().Select(p =>
        {
            var property = type.GetProperty(p.Name!, BindingFlags.Public | BindingFlags.Instance)
                ?? throw new InvalidOperationException($"{type.Name}: constructor parameter {p.Name} has no property of that name");
            bool nullable = !p.ParameterType.IsValueType && nullability.Create(p).WriteState == NullabilityState.Nullable;
            return (p.Name!, property, FieldCodec.For(p.ParameterType, nullable));
        }).ToArray();
    }

    public static MessageLayout Of(Type type) => Cache.GetOrAdd(type, t => new MessageLayout(t));

    /// <summary>The fields in wire order, for documentation and tests.</summary>
    public IReadOnlyList<(string Name, Type Type)> Fields => [.. _fields.Select(f => (f.Name, f.Property.PropertyType))];

    public void Write(ColmMessageSerializer serializer, PayloadWriter writer, object message, string prefix)
    {
        foreach (var (name, property, codec) in _fields) codec.Write(serializer, writer, property.GetValue(message), prefix + name);
    }

    public object Read(ColmMessageSerializer serializer, PayloadReader reader, string prefix)
    {
        if (_singleton is not null) return _singleton;
        var values = new object?[_fields.Length];
        for (int i = 0; i < _fields.Length; i++) values[i] = _fields[i].Codec.Read(serializer, reader, prefix + _fields[i].Name);
        return _constructor!.Invoke(values);
    }

    /// <summary>About the payload's size, so the writer's buffer is allocated once.</summary>
    public long SizeHint(object message) => _fields.Sum(f => f.Codec.Size(f.Property.GetValue(message)));

    public override string ToString() => $"{_type.Name}({string.Join(", ", _fields.Select(f => f.Name))})";
}

/// <summary>How one field of a given type is written and read; <see cref="For"/> is the whole type table.</summary>
internal sealed record FieldCodec(
    Action<ColmMessageSerializer, PayloadWriter, object?, string> Write,
    Func<ColmMessageSerializer, PayloadReader, string, object?> Read,
    Func<object?, long> Size)
{
    private static FieldCodec Fixed(Action<PayloadWriter, object> write, Func<PayloadReader, string, object?> read, long size) =>
        new((_, w, v, _) => write(w, v!), (_, r, f) => read(r, f), _ => size);

    private static long Block(int count) => 4 + 4L * count;

    public static FieldCodec For(Type type, bool nullable)
    {
        if (type == typeof(long)) return Fixed((w, v) => w.WriteInt64((long)v), (r, f) => r.ReadInt64(f), 8);
        if (type == typeof(int)) return Fixed((w, v) => w.WriteInt32((int)v), (r, f) => r.ReadInt32(f), 4);
        if (type == typeof(ulong)) return Fixed((w, v) => w.WriteUInt64((ulong)v), (r, f) => r.ReadUInt64(f), 8);
        if (type == typeof(double)) return Fixed((w, v) => w.WriteDouble((double)v), (r, f) => r.ReadDouble(f), 8);
        if (type == typeof(bool)) return Fixed((w, v) => w.WriteBool((bool)v), (r, f) => r.ReadBool(f), 1);
        if (type == typeof(TimeSpan)) return Fixed((w, v) => w.WriteTimeSpan((TimeSpan)v), (r, f) => r.ReadTimeSpan(f), 8);
        if (type == typeof(ulong?)) return new((_, w, v, _) => w.WriteNullableUInt64((ulong?)v), (_, r, f) => r.ReadNullableUInt64(f), _ => 9);
        if (type.IsEnum) return Fixed((w, v) => w.WriteInt32(Convert.ToInt32(v)), (r, f) => ReadEnum(type, r, f), 4);
        if (type == typeof(string))
            return nullable
                ? new((_, w, v, _) => w.WriteNullableString((string?)v), (_, r, f) => r.ReadNullableString(f), v => 4 + 3L * (((string?)v)?.Length ?? 0))
                : new((_, w, v, f) => w.WriteString((string)v!, f), (_, r, f) => r.ReadString(f), v => 4 + 3L * (((string?)v)?.Length ?? 0));
        if (type == typeof(ImmutableArray<int>))
            return new((_, w, v, _) => w.WriteInt32s((ImmutableArray<int>)v!), (_, r, f) => r.ReadInt32s(f), v => Block(Count((ImmutableArray<int>)v!)));
        if (type == typeof(ImmutableArray<float>))
            return new((_, w, v, _) => w.WriteFloats((ImmutableArray<float>)v!), (_, r, f) => r.ReadFloatsImmutable(f), v => Block(Count((ImmutableArray<float>)v!)));
        if (type == typeof(ImmutableArray<string>))
            return new((_, w, v, _) => w.WriteStrings((ImmutableArray<string>)v!), (_, r, f) => r.ReadStrings(f),
                v => 4 + (((ImmutableArray<string>)v!).IsDefault ? 0 : ((ImmutableArray<string>)v!).Sum(s => 4 + 3L * (s?.Length ?? 0))));
        if (type == typeof(float[])) return new((_, w, v, _) => w.WriteFloats((float[]?)v), (_, r, f) => r.ReadFloats(f), v => Block(((float[]?)v)?.Length ?? 0));
        if (type == typeof(bool[])) return new((_, w, v, _) => w.WriteBools((bool[]?)v), (_, r, f) => r.ReadBools(f), v => 4 + (((bool[]?)v)?.Length ?? 0));
        if (type == typeof(Actors.IClusterMessage))
            return new((s, w, v, f) => s.WriteEnclosed(w, v ?? throw new ArgumentNullException(f, $"{f} is null but is not optional"), f),
                (s, r, f) => s.ReadEnclosed(r, f), v => v is null ? 0 : 64 + MessageLayout.Of(v.GetType()).SizeHint(v));
        if (type == typeof(IActorRef))
            return new((s, w, v, _) => s.WriteActorRef(w, (IActorRef?)v), (s, r, f) => s.ReadActorRef(r, f), _ => 128);
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IReadOnlyDictionary<,>) && type.GetGenericArguments()[0] == typeof(string))
            return Dictionary(type.GetGenericArguments()[1]);
        if (type.IsClass && !type.IsAbstract) return Nested(type, nullable);
        throw new NotSupportedException($"no wire layout for fields of type {type.Name}: add it to {nameof(FieldCodec)}.{nameof(For)}");
    }

    private static int Count<T>(ImmutableArray<T> values) => values.IsDefault ? 0 : values.Length;

    private static object ReadEnum(Type type, PayloadReader reader, string field)
    {
        int raw = reader.ReadInt32(field);
        var value = Enum.ToObject(type, raw);
        return Enum.IsDefined(type, value) ? value : throw new MalformedPayloadException($"{field}: {raw} is not a {type.Name}");
    }

    /// <summary>A record inside a message: its own fields in place, behind a presence flag when it may be absent.</summary>
    private static FieldCodec Nested(Type type, bool nullable)
    {
        // Resolved on first use, so a layout may refer to itself or to one not built yet.
        MessageLayout Layout() => MessageLayout.Of(type);
        if (nullable)
            return new(
                (s, w, v, f) =>
                {
                    w.WriteBool(v is not null);
                    if (v is not null) Layout().Write(s, w, v, f + ".");
                },
                (s, r, f) => r.ReadBool(f + " presence") ? Layout().Read(s, r, f + ".") : null,
                v => 1 + (v is null ? 0 : Layout().SizeHint(v)));
        return new(
            (s, w, v, f) => Layout().Write(s, w, v ?? throw new ArgumentNullException(f, $"{f} is null but is not optional"), f + "."),
            (s, r, f) => Layout().Read(s, r, f + "."),
            v => v is null ? 0 : Layout().SizeHint(v));
    }

    /// <summary>String-keyed dictionaries, entries in ordinal key order so equal dictionaries give equal bytes.</summary>
    private static FieldCodec Dictionary(Type valueType)
    {
        var value = For(valueType, nullable: false);
        return new(
            (s, w, v, f) =>
            {
                if (v is null)
                {
                    w.WriteInt32(PayloadWriter.NullLength);
                    return;
                }
                var entries = ((IEnumerable)v).Cast<object>()
                    .Select(e => (Key: (string)e.GetType().GetProperty("Key")!.GetValue(e)!, Value: e.GetType().GetProperty("Value")!.GetValue(e)))
                    .OrderBy(e => e.Key, StringComparer.Ordinal).ToArray();
                w.WriteInt32(entries.Length);
                foreach (var (key, item) in entries)
                {
                    w.WriteString(key, f + " key");
                    value.Write(s, w, item, $"{f}[{key}]");
                }
            },
            (s, r, f) =>
            {
                int count = r.ReadCount(f, elementSize: 4);
                if (count == PayloadWriter.NullLength) return null;
                var result = (IDictionary)Activator.CreateInstance(typeof(Dictionary<,>).MakeGenericType(typeof(string), valueType), StringComparer.Ordinal)!;
                for (int i = 0; i < count; i++)
                {
                    string key = r.ReadString($"{f} key {i}");
                    if (result.Contains(key)) throw new MalformedPayloadException($"{f}: key '{key}' appears twice");
                    result.Add(key, value.Read(s, r, $"{f}[{key}]"));
                }
                return result;
            },
            v => 4 + (v is null ? 0 : ((IEnumerable)v).Cast<object>().Count() * 48L));
    }
}
