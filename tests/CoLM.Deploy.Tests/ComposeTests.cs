using CoLM.Cluster.Configuration;

namespace CoLM.Deploy.Tests;

public sealed class ComposeTests
{
    private static readonly Dictionary<string, object?> Compose = Repo.Document("deploy/compose.yaml");

    private static Dictionary<string, object?> Services => Compose.Map("services");

    private static Dictionary<string, object?> Service(string name) => Services.Map(name);

    /// <summary>Services that run `colm node` (the cluster members Prometheus scrapes).</summary>
    private static IReadOnlyList<string> NodeServices() =>
        Services.Keys.Where(s => Service(s).TryGetValue("command", out var c) && c is List<object?> l && (string?)l[0] == "node").ToList();

    private static int MetricsPort() => HoconSources.Defaults().GetInt("colm.telemetry.http-port");

    [Fact]
    public void Every_yaml_file_under_deploy_parses()
    {
        var files = Directory.GetFiles(Repo.Deploy, "*.y*ml", SearchOption.AllDirectories);
        Assert.True(files.Length >= 9, $"expected the compose, prometheus, grafana and k8s files, found {files.Length}");
        foreach (string file in files)
            Assert.NotEmpty(Repo.Documents(Path.GetRelativePath(Repo.Root, file)));
    }

    [Fact]
    public void Three_nodes_one_coordinator_with_the_coordinator_as_seed()
    {
        var nodes = NodeServices();
        Assert.Equal(["coordinator", "trainer-1", "trainer-2"], nodes.Order());
        string seedPort = Repo.Flag(Service("coordinator").Strings("command"), "--port");
        foreach (string name in nodes)
        {
            var service = Service(name);
            var command = service.Strings("command");
            Assert.Equal(name, Repo.Flag(command, "--public-host"));
            Assert.Equal(name, service.Str("hostname"));
            Assert.Equal("0.0.0.0", Repo.Flag(command, "--host"));
            Assert.Equal($"coordinator:{seedPort}", Repo.Flag(command, "--seed-nodes"));
            Assert.Equal(name == "coordinator" ? "coordinator" : "trainer", Repo.Flag(command, "--roles"));
            Assert.Contains("prometheus", service.Str("environment.COLM__TELEMETRY__EXPORTER").Split(','));
        }
        Assert.Equal($"coordinator:{seedPort}", Repo.Flag(Service("submit").Strings("command"), "--cluster"));
        Assert.Equal("train", Service("submit").Strings("command")[0]);
    }

    [Fact]
    public void Every_colm_service_mounts_the_shared_runs_volume_at_the_run_root()
    {
        Assert.True(Compose.Map("volumes").ContainsKey("runs"));
        foreach (string name in NodeServices().Append("submit"))
        {
            var service = Service(name);
            Assert.Equal("colm:cpu", service.Str("image"));
            Assert.Contains("runs:/colm/runs", service.Strings("volumes"));
        }
        // The image's working directory is /colm and colm.run.root defaults to "runs".
        Assert.Equal("runs", HoconSources.Defaults().GetString("colm.run.root"));
        Assert.Contains("WORKDIR /colm", File.ReadAllLines(Repo.PathOf("deploy/Dockerfile")));
    }

    [Fact]
    public void Build_context_and_mounted_files_exist()
    {
        var build = Service("coordinator").Map("build");
        string context = Path.GetFullPath(Path.Combine(Repo.Deploy, build.Str("context")));
        Assert.Equal(Repo.Root.TrimEnd(Path.DirectorySeparatorChar), context.TrimEnd(Path.DirectorySeparatorChar));
        Assert.True(File.Exists(Path.Combine(context, build.Str("dockerfile"))));
        foreach (string name in new[] { "prometheus", "grafana" })
        {
            foreach (string volume in Service(name).Strings("volumes").Where(v => v.StartsWith("./", StringComparison.Ordinal)))
                Assert.True(Path.Exists(Path.Combine(Repo.Deploy, volume.Split(':')[0])), volume);
        }
    }

    [Fact]
    public void Prometheus_scrapes_every_node_service_on_the_metrics_port()
    {
        var prometheus = Repo.Document("deploy/prometheus.yml");
        var job = Assert.Single(prometheus.Maps("scrape_configs"));
        var targets = job.Maps("static_configs").SelectMany(c => c.Strings("targets")).ToList();
        Assert.Equal(NodeServices().Select(s => $"{s}:{MetricsPort()}").Order(), targets.Order());
        Assert.Contains("/etc/prometheus/prometheus.yml", Service("prometheus").Strings("volumes").Single(v => v.StartsWith("./prometheus.yml", StringComparison.Ordinal)));
    }

    [Fact]
    public void Grafana_provisions_the_colm_dashboard_templated_by_run_and_rank()
    {
        var provider = Assert.Single(Repo.Document("deploy/grafana/dashboards.yaml").Maps("providers"));
        string folder = provider.Map("options").Str("path");
        var mount = Service("grafana").Strings("volumes").Single(v => v.StartsWith("./grafana/dashboards:", StringComparison.Ordinal));
        Assert.Equal(folder, mount.Split(':')[1]);
        Assert.Contains(Service("grafana").Strings("volumes"), v => v.StartsWith("./grafana/dashboards.yaml:/etc/grafana/provisioning/dashboards/", StringComparison.Ordinal));
        using var dashboard = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Repo.PathOf("deploy/grafana/dashboards/colm.json")));
        var variables = dashboard.RootElement.GetProperty("templating").GetProperty("list").EnumerateArray().Select(v => v.GetProperty("name").GetString()).ToArray();
        Assert.Contains("run", variables);
        Assert.Contains("rank", variables);
        // Each panel's query is run against a real Prometheus in CoLM.System.Tests (GrafanaPanelTests); here: each is filtered by run.
        var queries = dashboard.RootElement.GetProperty("panels").EnumerateArray()
            .SelectMany(p => p.GetProperty("targets").EnumerateArray()).Select(t => t.GetProperty("expr").GetString()!);
        foreach (string expr in queries)
            Assert.True(expr.Contains("$run", StringComparison.Ordinal) || expr.Contains("job=\"colm\"", StringComparison.Ordinal), expr);
    }

    [Fact]
    public void Grafana_reads_from_the_prometheus_service()
    {
        var datasources = Repo.Document("deploy/grafana/datasources.yaml");
        var source = Assert.Single(datasources.Maps("datasources"));
        Assert.Equal("prometheus", source.Str("type"));
        var url = new Uri(source.Str("url"));
        Assert.True(Services.ContainsKey(url.Host), url.Host);
        Assert.Contains(Service("prometheus").Strings("ports"), p => p.EndsWith(":" + url.Port, StringComparison.Ordinal));
    }
}
