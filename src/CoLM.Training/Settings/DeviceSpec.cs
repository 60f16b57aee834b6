namespace CoLM.Training.Settings;

/// <summary>
/// The devices a node offers its trainers: <c>cpu:N</c> (N replicas sharing the CPU) or
/// <c>cuda:0,1,...</c> (one replica per listed GPU). One trainer actor per entry.
/// </summary>
public sealed record DeviceSpec(string Kind, IReadOnlyList<int> Indices)
{
    public int Count => Indices.Count;

    public bool IsCuda => Kind == "cuda";

    public override string ToString() => IsCuda ? "cuda:" + string.Join(",", Indices) : $"cpu:{Count}";

    public static DeviceSpec Cpu(int count) => new("cpu", Enumerable.Range(0, count).ToArray());

    /// <summary>Parses "auto", "cpu:N" or "cuda:0,1"; null with a reason when the text is none of them.</summary>
    public static DeviceSpec? TryParse(string text, out string error)
    {
        error = "";
        text = text.Trim();
        if (text == "auto") return Cpu(1);
        if (text.StartsWith("cpu:", StringComparison.Ordinal))
        {
            if (int.TryParse(text.AsSpan(4), out int n) && n >= 1) return Cpu(n);
            error = "cpu:N needs a count of at least 1";
            return null;
        }
        if (text.StartsWith("cuda:", StringComparison.Ordinal))
        {
            var parts = text[5..].Split(',', StringSplitOptions.TrimEntries);
            var indices = new List<int>();
            foreach (var p in parts)
            {
                if (!int.TryParse(p, out int i) || i < 0 || indices.Contains(i))
                {
                    error = $"'{p}' is not a distinct GPU index";
                    return null;
                }
                indices.Add(i);
            }
            return new DeviceSpec("cuda", indices);
        }
        error = "expected auto, cpu:N or cuda:0,1,...";
        return null;
    }
}
