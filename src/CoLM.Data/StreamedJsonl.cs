namespace CoLM.Data;

/// <summary>
/// The training split of a JSONL file without the file in memory: per example only its line in the file (through the
/// cached <see cref="JsonlIndex"/>) and its source id are kept; an example is read, parsed and tokenized when someone
/// asks for it, and the most recent <see cref="CacheCapacity"/> are kept (a pool is sketched, then part of it
/// trained on, so each example is usually asked for two or three times in a row). Thread-safe: the coordinator and
/// every trainer read it concurrently. Ids are indices into this list, as for an in-memory split.
/// </summary>
internal sealed class StreamedJsonlSplit : IReadOnlyList<TokenizedExample>
{
    private readonly JsonlIndex _index;
    private readonly Func<string, string, RawExample> _parse;
    private readonly Func<string, string>? _formatPrompt;
    private readonly ITokenizer _tokenizer;
    private readonly int _maxLength;
    private readonly int[] _lines;     // index entry of each example
    private readonly int[] _sourceIds; // source id of each example
    private readonly Dictionary<int, TokenizedExample> _cache = [];
    private readonly Queue<int> _order = new();
    private readonly Lock _lock = new();

    public StreamedJsonlSplit(JsonlIndex index, Func<string, string, RawExample> parse, Func<string, string>? formatPrompt,
        ITokenizer tokenizer, int maxLength, int[] lines, int[] sourceIds, int cacheCapacity)
    {
        _index = index;
        _parse = parse;
        _formatPrompt = formatPrompt;
        _tokenizer = tokenizer;
        _maxLength = maxLength;
        _lines = lines;
        _sourceIds = sourceIds;
        CacheCapacity = cacheCapacity;
    }

    public int CacheCapacity { get; }

    public int Count => _lines.Length;

    public TokenizedExample this[int id]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfNegative(id);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(id, _lines.Length);
            lock (_lock)
            {
                if (_cache.TryGetValue(id, out var cached)) return cached;
            }

            var example = ExampleTokenizer.Tokenize(Raw(_index, _lines[id], _parse, _formatPrompt), id, _sourceIds[id], _tokenizer, _maxLength);
            lock (_lock)
            {
                if (_cache.TryAdd(id, example))
                {
                    _order.Enqueue(id);
                    while (_order.Count > CacheCapacity) _cache.Remove(_order.Dequeue());
                }
            }
            return example;
        }
    }

    /// <summary>Entry <paramref name="line"/> of the index, parsed (origin "path:line") and its prompt formatted.</summary>
    public static RawExample Raw(JsonlIndex index, int line, Func<string, string, RawExample> parse, Func<string, string>? formatPrompt)
    {
        var raw = parse(index.ReadLine(line), $"{index.Path}:{index.LineNumberOf(line)}");
        return formatPrompt is null ? raw : raw with { Prompt = formatPrompt(raw.Prompt) };
    }

    public IEnumerator<TokenizedExample> GetEnumerator()
    {
        for (int i = 0; i < Count; i++) yield return this[i];
    }

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}
