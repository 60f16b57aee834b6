using CoLM.Cluster.Configuration;
using CoLM.Cluster.Hosting;
using CoLM.Selection;

namespace CoLM.System.Tests;

public sealed class ConfigTests
{
    private static Training.Settings.ColmSettings Read(params string[] sets) => SettingsReader.Read(RunPlan.Layer(null, [], sets));

    [Fact]
    public void The_embedded_defaults_parse_into_the_documented_run()
    {
        var s = Read();
        Assert.Equal(SelectionMethod.Colm, s.Selection.Method);
        Assert.Equal(2, s.Train.Trainers);
        Assert.Equal(s.Selection.Pool / 2, s.Selection.Budget);
        Assert.Null(s.Selection.SmallSources);
        Assert.Equal(TimeSpan.FromSeconds(10), s.Cluster.RestartGrace);
        Assert.Equal("instruct", s.Data.Synthetic.Mixture);
        Assert.Equal(200, s.Data.HeldoutPerSource);
        Assert.Equal(TimeSpan.FromSeconds(3), Read("colm.cluster.restart-grace=3s").Cluster.RestartGrace);
        Assert.Equal((1, 2), (s.Train.MinTrainers, s.Train.MaxTrainersAdmitted));
        Assert.Equal(TimeSpan.FromSeconds(60), s.Cluster.MembershipWait);
        Assert.Equal(5, Read("colm.train.max-trainers=5").Train.MaxTrainersAdmitted);
    }

    [Fact]
    public void Set_overrides_and_lists_are_applied()
    {
        var s = Read("colm.selection.method=random", "colm.selection.small-sources=[a, b]", "colm.data.path=/x//y.jsonl");
        Assert.Equal(SelectionMethod.Random, s.Selection.Method);
        Assert.Equal(["a", "b"], s.Selection.SmallSources);
        Assert.Equal("/x//y.jsonl", s.Data.Path);
    }

    [Theory]
    [InlineData("colm.selection.budget=64", "colm.selection.budget")]
    [InlineData("colm.selection.method=best", "colm.selection.method")]
    [InlineData("colm.model.lora.targets=[q_proj]", "colm.model.lora.targets")]
    [InlineData("colm.train.learning-rate=-1", "colm.train.learning-rate")]
    [InlineData("colm.cluster.phase-timeout=soon", "colm.cluster.phase-timeout")]
    [InlineData("colm.nonsense=1", "colm.nonsense")]
    [InlineData("colm.selection.feature=magic", "colm.selection.feature")]
    [InlineData("colm.selection.source-balancing=maybe", "colm.selection.source-balancing")]
    [InlineData("colm.selection.weights=heavy", "colm.selection.weights")]
    [InlineData("training.steps=1", "training.steps")]
    [InlineData("colm.telemetry.exporter=zipkin", "colm.telemetry.exporter")]
    [InlineData("colm.telemetry.exporter=none,file", "colm.telemetry.exporter")]
    [InlineData("colm.telemetry.http-port=70000", "colm.telemetry.http-port")]
    [InlineData("colm.telemetry.http-host=", "colm.telemetry.http-host")]
    [InlineData("colm.train.min-trainers=0", "colm.train.min-trainers")]
    [InlineData("colm.cluster.membership-wait=later", "colm.cluster.membership-wait")]
    public void Bad_values_name_their_path(string set, string path)
    {
        var e = Assert.Throws<ConfigException>(() => Read(set));
        Assert.Equal(path, e.Path);
        Assert.StartsWith($"config {path}:", e.Message);
    }

    [Fact]
    public void Telemetry_exporters_combine_and_the_prometheus_endpoint_is_configurable()
    {
        var t = Read("colm.telemetry.exporter= File , prometheus", "colm.telemetry.http-host=0.0.0.0",
            "colm.telemetry.http-port=9500").Telemetry;
        Assert.Equal("file,prometheus", t.Exporter);
        Assert.Equal("0.0.0.0", t.HttpHost);
        Assert.Equal(9500, t.HttpPort);
        var defaults = Read().Telemetry;
        Assert.Equal(("127.0.0.1", 9464), (defaults.HttpHost, defaults.HttpPort));
    }

    [Fact]
    public void The_learning_rate_warms_up_then_decays_linearly_to_zero()
    {
        var t = Read("colm.train.steps=100", "colm.train.warmup-fraction=0.1", "colm.train.learning-rate=1").Train;
        Assert.Equal(0.1, t.LearningRateAt(0), 12);
        Assert.Equal(1.0, t.LearningRateAt(9), 12);
        Assert.True(t.LearningRateAt(50) < 1.0 && t.LearningRateAt(50) > 0.4);
        Assert.Equal(0.0, t.LearningRateAt(100), 12);
    }

    [Fact]
    public void Environment_variables_map_to_colm_paths()
    {
        var env = new global::System.Collections.Hashtable
        {
            ["COLM__TRAIN__LEARNING_RATE"] = "0.5",
            ["COLM__SELECTION__POOL"] = "64",
            ["PATH"] = "/usr/bin",
        };
        var layered = Akka.Configuration.ConfigurationFactory.Empty;
        foreach (var (_, c) in HoconSources.FromEnvironment(env)) layered = c.WithFallback(layered);
        Assert.Equal("0.5", layered.GetString("colm.train.learning-rate"));
        Assert.Equal(64, layered.GetInt("colm.selection.pool"));

        var bad = new global::System.Collections.Hashtable { ["COLM__TRAIN__STEPZ"] = "1" };
        var (origin, config) = HoconSources.FromEnvironment(bad).Single();
        var e = Assert.Throws<ConfigException>(() => HoconSources.RejectUnknownKeys(config, HoconSources.Defaults(), origin));
        Assert.Contains("COLM__TRAIN__STEPZ", e.Message);
    }
}
