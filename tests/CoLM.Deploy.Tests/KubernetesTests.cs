using Akka.Configuration;
using CoLM.Cluster.Configuration;

namespace CoLM.Deploy.Tests;

public sealed class KubernetesTests
{
    private static Dictionary<string, object?> Of(string kind) =>
        Assert.Single(Directory.GetFiles(Path.Combine(Repo.Deploy, "k8s"), "*.yaml")
            .SelectMany(f => Repo.Documents(Path.GetRelativePath(Repo.Root, f))),
            d => d.TryGetValue("kind", out var k) && (string?)k == kind);

    private static Dictionary<string, object?> Container(Dictionary<string, object?> workload) =>
        Assert.Single(workload.Maps("spec.template.spec.containers"));

    /// <summary>The words of the StatefulSet's start script (line continuations joined, quotes dropped).</summary>
    private static IReadOnlyList<string> NodeCommand()
    {
        var container = Container(Of("StatefulSet"));
        Assert.Equal(["/bin/sh", "-c"], container.Strings("command"));
        string script = Assert.Single(container.Strings("args"));
        string exec = script.Replace("\\\n", " ").Split('\n').Single(l => l.TrimStart().StartsWith("exec ", StringComparison.Ordinal));
        return exec.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(w => w.Trim('"')).Skip(1).ToList();
    }

    [Fact]
    public void Every_manifest_has_api_version_kind_and_name_and_no_namespace()
    {
        foreach (string file in Directory.GetFiles(Path.Combine(Repo.Deploy, "k8s"), "*.yaml"))
        {
            foreach (var doc in Repo.Documents(Path.GetRelativePath(Repo.Root, file)))
            {
                Assert.False(string.IsNullOrEmpty(doc.Str("apiVersion")), file);
                string kind = doc.Str("kind");
                if (kind == "Kustomization")
                    continue;
                Assert.False(string.IsNullOrEmpty(doc.Str("metadata.name")), file);
                Assert.False(doc.Map("metadata").ContainsKey("namespace"), $"{file}: manifests are namespace-free");
            }
        }
    }

    [Fact]
    public void Kustomization_lists_the_long_lived_manifests_and_they_exist()
    {
        var kustomization = Repo.Document("deploy/k8s/kustomization.yaml");
        var resources = kustomization.Strings("resources");
        foreach (string resource in resources)
            Assert.True(File.Exists(Path.Combine(Repo.Deploy, "k8s", resource)), resource);
        Assert.Equal(["configmap.yaml", "pvc.yaml", "service.yaml", "statefulset.yaml"], resources.Order());
    }

    [Fact]
    public void StatefulSet_uses_the_headless_service_and_its_selector()
    {
        var service = Of("Service");
        var statefulSet = Of("StatefulSet");
        Assert.Equal("None", service.Str("spec.clusterIP"));
        Assert.Equal(service.Str("metadata.name"), statefulSet.Str("spec.serviceName"));
        var podLabels = statefulSet.Map("spec.template.metadata.labels");
        foreach (var (key, value) in statefulSet.Map("spec.selector.matchLabels"))
            Assert.Equal(value, podLabels[key]);
        foreach (var (key, value) in service.Map("spec.selector"))
            Assert.Equal(value, podLabels[key]);

        var containerPorts = Container(statefulSet).Maps("ports").ToDictionary(p => p.Str("name"), p => p.Str("containerPort"));
        foreach (var port in service.Maps("spec.ports"))
            Assert.Equal(port.Str("port"), containerPorts[port.Str("targetPort")]);
    }

    [Fact]
    public void Seed_and_public_host_are_the_stable_dns_names_of_the_pods()
    {
        var statefulSet = Of("StatefulSet");
        string service = statefulSet.Str("spec.serviceName");
        string name = statefulSet.Str("metadata.name");
        var args = NodeCommand();
        Assert.Equal("/app/colm", args[0]);
        Assert.Equal("node", args[1]);

        string port = Repo.Flag(args, "--port");
        var remoting = Container(statefulSet).Maps("ports").Single(p => p.Str("name") == "remoting");
        Assert.Equal(port, remoting.Str("containerPort"));
        Assert.Equal($"{name}-0.{service}:{port}", Repo.Flag(args, "--seed-nodes"));
        Assert.Equal("${POD_NAME}." + service, Repo.Flag(args, "--public-host"));
        Assert.Equal("0.0.0.0", Repo.Flag(args, "--host"));
        Assert.Equal("$roles", Repo.Flag(args, "--roles"));

        var podName = Container(statefulSet).Maps("env").Single(e => e.Str("name") == "POD_NAME");
        Assert.Equal("metadata.name", podName.Str("valueFrom.fieldRef.fieldPath"));

        // The submit Job talks to the same seed.
        var job = Container(Of("Job"));
        Assert.Equal($"{name}-0.{service}:{port}", Repo.Flag(job.Strings("args"), "--cluster"));
    }

    [Fact]
    public void Config_map_is_mounted_where_config_points_and_the_runs_volume_is_shared()
    {
        var configMap = Of("ConfigMap");
        var pvc = Of("PersistentVolumeClaim");
        Assert.Contains("ReadWriteMany", pvc.Strings("spec.accessModes"));
        foreach (var workload in new[] { Of("StatefulSet"), Of("Job") })
        {
            var container = Container(workload);
            var volumes = workload.Maps("spec.template.spec.volumes").ToDictionary(v => v.Str("name"));
            var mounts = container.Maps("volumeMounts").ToDictionary(m => m.Str("name"), m => m.Str("mountPath"));

            var config = volumes.Values.Single(v => v.ContainsKey("configMap"));
            Assert.Equal(configMap.Str("metadata.name"), config.Str("configMap.name"));
            string configFile = mounts[config.Str("name")] + "/" + Assert.Single(configMap.Map("data").Keys);
            var args = workload.Str("kind") == "Job" ? container.Strings("args") : NodeCommand();
            Assert.Equal(configFile, Repo.Flag(args, "--config"));

            var runs = volumes.Values.Single(v => v.ContainsKey("persistentVolumeClaim"));
            Assert.Equal(pvc.Str("metadata.name"), runs.Str("persistentVolumeClaim.claimName"));
            Assert.Equal(RunRoot(), mounts[runs.Str("name")]);
        }
    }

    [Fact]
    public void Probes_read_the_health_endpoints_of_the_http_host_the_config_map_opens()
    {
        var container = Container(Of("StatefulSet"));
        Assert.Equal("/readyz", container.Str("readinessProbe.httpGet.path"));
        Assert.Equal("/healthz", container.Str("livenessProbe.httpGet.path"));
        string probePort = container.Str("readinessProbe.httpGet.port");
        var metrics = container.Maps("ports").Single(p => p.Str("name") == probePort);

        var config = ConfigMapHocon();
        Assert.Equal(metrics.Str("containerPort"), config.GetString("colm.telemetry.http-port"));
        Assert.Contains("prometheus", config.GetString("colm.telemetry.exporter").Split(','));
        Assert.Equal("0.0.0.0", config.GetString("colm.telemetry.http-host"));
    }

    [Fact]
    public void Config_map_hocon_uses_only_known_keys_and_reads_into_valid_settings()
    {
        var defaults = HoconSources.Defaults();
        var config = ConfigMapHocon();
        // A key that hocon/colm.conf does not define (a typo, or a cluster key not yet there) fails here.
        HoconSources.RejectUnknownKeys(config, defaults, "deploy/k8s/configmap.yaml");
        var settings = SettingsReader.Read(config.WithFallback(defaults));
        Assert.Equal("file,prometheus", settings.Telemetry.Exporter);
        Assert.Equal(9464, settings.Telemetry.HttpPort);
        Assert.Equal(int.Parse(Repo.Flag(NodeCommand(), "--port"), System.Globalization.CultureInfo.InvariantCulture),
            settings.Cluster.Port);
        Assert.Equal(RunRoot(), settings.Run.Root);
    }

    [Fact]
    public void A_wrong_key_in_the_config_map_would_be_rejected()
    {
        var wrong = ConfigurationFactory.ParseString("colm { telemetry { prometheus-prot = 9464 } }");
        var error = Assert.Throws<ConfigException>(() => HoconSources.RejectUnknownKeys(wrong, HoconSources.Defaults(), "test"));
        Assert.Equal("colm.telemetry.prometheus-prot", error.Path);
    }

    private static string RunRoot() => ConfigMapHocon().GetString("colm.run.root");

    private static Config ConfigMapHocon()
    {
        string hocon = Assert.Single(Of("ConfigMap").Map("data").Values) as string
            ?? throw new Xunit.Sdk.XunitException("ConfigMap data is not text");
        string file = Path.Combine(Path.GetTempPath(), $"colm-configmap-{Guid.NewGuid():N}.conf");
        File.WriteAllText(file, hocon);
        try
        {
            return HoconSources.ParseFile(file);
        }
        finally
        {
            File.Delete(file);
        }
    }
}
