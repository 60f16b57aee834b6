namespace CoLM.System.Tests;

public sealed class DataInspectTests : IDisposable
{
    private readonly TinyRun _tiny = new();

    public void Dispose() => _tiny.Dispose();

    [Fact]
    public async Task Data_inspect_reports_sources_the_small_ones_and_truncation()
    {
        var lines = new List<string>();
        for (int i = 0; i < 30; i++) lines.Add($"{{\"source\":\"big\",\"instruction\":\"q{i}\",\"output\":\"a\"}}");
        lines.Add("{\"source\":\"big\",\"instruction\":\"a much longer question than the rest\",\"output\":\"b\"}");
        for (int i = 0; i < 5; i++) lines.Add($"{{\"source\":\"tiny\",\"instruction\":\"t{i}\",\"output\":\"c\"}}");
        var path = Path.Combine(_tiny.Root, "mix.jsonl");
        File.WriteAllLines(path, lines);

        var o = await ColmProcess.RunAsync(_tiny.Root, "data", "inspect", path, "--set", "colm.data.max-length=20",
            "--set", "colm.data.prompt-template=none");

        Assert.True(o.ExitCode == 0, o.Stderr);
        Assert.Contains("36 examples, 2 sources", o.Stdout);
        Assert.Contains("| big | 31 |", o.Stdout);
        Assert.Contains("| tiny | 5 | 13.9% | yes |", o.Stdout);
        Assert.Contains("| 1 (3.2%) |", o.Stdout);
        Assert.Contains("1 of 2 sources are small", o.Stdout);
        Assert.True(File.Exists(path + ".idx"), "the line index is cached beside the file");
    }

    [Fact]
    public async Task Data_inspect_names_a_malformed_line()
    {
        var path = Path.Combine(_tiny.Root, "bad.jsonl");
        File.WriteAllLines(path, ["{\"source\":\"a\",\"instruction\":\"q\",\"output\":\"a\"}", "{oops"]);

        var o = await ColmProcess.RunAsync(_tiny.Root, "data", "inspect", path);

        Assert.Equal(2, o.ExitCode);
        Assert.Contains("bad.jsonl:2", o.Stderr);
    }
}
