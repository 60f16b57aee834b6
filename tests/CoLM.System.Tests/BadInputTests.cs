namespace CoLM.System.Tests;

/// <summary>Each bad input: one clear message naming where, a non-zero exit, no run left looking complete.</summary>
public sealed class BadInputTests : IDisposable
{
    private readonly TinyRun _tiny = new();

    public void Dispose() => _tiny.Dispose();

    private Task<ColmProcess.Outcome> Train(params string[] extra)
    {
        var args = new List<string> { "train", "--quiet" };
        foreach (var s in _tiny.Sets("bad", extra)) args.AddRange(["--set", s]);
        return ColmProcess.RunAsync(_tiny.Root, [.. args]);
    }

    private string WriteJsonl(params string[] lines)
    {
        var path = Path.Combine(_tiny.Root, "data.jsonl");
        File.WriteAllLines(path, lines);
        return path;
    }

    private static string Line(string source, int i) =>
        $"{{\"source\":\"{source}\",\"instruction\":\"q{i}\",\"output\":\"a{i}\"}}";

    private void AssertNoRunDirectory() => Assert.False(Directory.Exists(_tiny.RunPath("bad")), "a run directory was created for bad input");

    private static void AssertOneClearMessage(ColmProcess.Outcome o, params string[] fragments)
    {
        Assert.Equal(2, o.ExitCode);
        foreach (var f in fragments) Assert.Contains(f, o.Stderr);
        Assert.DoesNotContain("   at ", o.Stderr); // no stack trace
    }

    [Fact]
    public async Task An_unknown_config_key_is_named()
    {
        var o = await Train("colm.train.stepz=5");
        AssertOneClearMessage(o, "colm.train.stepz", "unknown setting");
        AssertNoRunDirectory();
    }

    [Fact]
    public async Task An_ill_typed_config_value_is_named_with_the_value()
    {
        var o = await Train("colm.train.steps=many");
        AssertOneClearMessage(o, "colm.train.steps", "'many'");
        AssertNoRunDirectory();
    }

    [Fact]
    public async Task An_unknown_key_in_a_config_file_names_the_file()
    {
        var conf = Path.Combine(_tiny.Root, "my.conf");
        File.WriteAllText(conf, "colm.selection { pool = 64, poool = 3 }");
        var o = await ColmProcess.RunAsync(_tiny.Root, "train", "--config", conf);
        AssertOneClearMessage(o, "colm.selection.poool", "my.conf");
    }

    [Fact]
    public async Task A_malformed_jsonl_line_is_named_by_file_and_line()
    {
        var lines = Enumerable.Range(0, 40).Select(i => Line(i % 2 == 0 ? "a" : "b", i)).ToList();
        lines[16] = "{\"source\": \"a\", \"instruction\": ";
        var path = WriteJsonl([.. lines]);
        var o = await Train("colm.data.kind=jsonl", $"colm.data.path={path}");
        AssertOneClearMessage(o, "data.jsonl:17");
        AssertNoRunDirectory();
    }

    [Fact]
    public async Task A_missing_source_field_is_named()
    {
        var lines = Enumerable.Range(0, 40).Select(i => Line("a", i)).ToList();
        lines[3] = "{\"instruction\":\"q\",\"output\":\"a\"}";
        var path = WriteJsonl([.. lines]);
        var o = await Train("colm.data.kind=jsonl", $"colm.data.path={path}");
        AssertOneClearMessage(o, "data.jsonl:4", "source");
        AssertNoRunDirectory();
    }

    [Fact]
    public async Task A_missing_target_field_is_named_with_its_configured_name()
    {
        var lines = Enumerable.Range(0, 40).Select(i => $"{{\"src\":\"a\",\"q\":\"q{i}\",\"answer\":\"a{i}\"}}").ToList();
        lines[9] = "{\"src\":\"a\",\"q\":\"q\"}";
        var path = WriteJsonl([.. lines]);
        var o = await Train("colm.data.kind=jsonl", $"colm.data.path={path}", "colm.data.fields.source=src",
            "colm.data.fields.prompt=q", "colm.data.fields.target=answer");
        AssertOneClearMessage(o, "data.jsonl:10", "answer");
        AssertNoRunDirectory();
    }

    [Fact]
    public async Task An_empty_dataset_is_refused()
    {
        var path = WriteJsonl("", "  ");
        var o = await Train("colm.data.kind=jsonl", $"colm.data.path={path}");
        AssertOneClearMessage(o, "data.jsonl", "empty");
        AssertNoRunDirectory();
    }

    [Fact]
    public async Task A_checkpoint_from_a_different_model_shape_is_refused_and_left_intact()
    {
        var first = await _tiny.TrainAsync("shape", "colm.train.steps=2");
        Assert.Equal("completed", first.State);
        var checkpoint = TinyRun.FinalState(_tiny.RunPath("shape"), 2);

        var o = await ColmProcess.RunAsync(_tiny.Root, "train", "--quiet", "--resume", _tiny.RunPath("shape"),
            "--set", "colm.model.lora.rank=8", "--set", "colm.train.steps=4");

        AssertOneClearMessage(o, "different model shape", "colm.model.lora.rank = 4 in the checkpoint, 8 requested");
        Assert.Equal(checkpoint, TinyRun.FinalState(_tiny.RunPath("shape"), 2));
    }

    [Fact]
    public async Task A_truncated_checkpoint_is_reported_by_path_and_refused_before_the_run_starts()
    {
        var first = await _tiny.TrainAsync("corrupt", "colm.train.steps=2");
        Assert.Equal("completed", first.State);
        var state = Path.Combine(_tiny.RunPath("corrupt"), "checkpoints", "step-000002", "trainer-state.bin");
        var bytes = File.ReadAllBytes(state);
        File.WriteAllBytes(state, bytes[..(bytes.Length / 2)]);

        var o = await ColmProcess.RunAsync(_tiny.Root, "train", "--quiet", "--resume", _tiny.RunPath("corrupt"), "--set", "colm.train.steps=4");

        // Its manifest shows the damage before anything starts: bad input, and the run is left as it was.
        AssertOneClearMessage(o, "step-000002: trainer-state.bin: truncated");
        Assert.Contains("\"completed\"", File.ReadAllText(Path.Combine(_tiny.RunPath("corrupt"), "status.json")));
    }

    [Theory]
    [InlineData("--devices", "cuda:0", "colm.cluster.devices", "CPU only")]
    [InlineData("--devices", "tpu:1", "colm.cluster.devices", "cpu:N")]
    [InlineData("--roles", "coordinator,boss", "colm.cluster.roles", "unknown role 'boss'")]
    [InlineData("--seed-nodes", "nohost", "colm.cluster.seed-nodes", "host:port")]
    public async Task A_bad_node_setting_is_named_before_the_node_starts(string flag, string value, string key, string why)
    {
        var o = await ColmProcess.RunAsync(_tiny.Root, "node", flag, value);
        AssertOneClearMessage(o, key, why);
    }
}
