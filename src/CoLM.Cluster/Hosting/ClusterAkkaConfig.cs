using Akka.Configuration;
using CoLM.Cluster.Configuration;
using CoLM.Training.Settings;

namespace CoLM.Cluster.Hosting;

/// <summary>The Akka settings of one cluster member, from colm.cluster.* over the embedded akka block.</summary>
public static class ClusterAkkaConfig
{
    public const string SystemName = "colm";

    /// <summary>"host:port" of a seed node as an Akka address.</summary>
    public static string SeedAddress(string hostPort) => $"akka.tcp://{SystemName}@{hostPort}";

    public static Config For(ClusterSettings cluster, IEnumerable<string> roles, IEnumerable<string> seedNodes, Config fallback)
    {
        string text = $"""
            akka.remote.dot-netty.tcp.hostname = {HoconSources.Quote(cluster.Hostname)}
            akka.remote.dot-netty.tcp.public-hostname = {HoconSources.Quote(cluster.AdvertisedHostname)}
            akka.remote.dot-netty.tcp.port = {cluster.Port}
            akka.cluster.roles = [{string.Join(", ", roles.Select(HoconSources.Quote))}]
            akka.cluster.seed-nodes = [{string.Join(", ", seedNodes.Select(s => HoconSources.Quote(SeedAddress(s))))}]
            """;
        return ConfigurationFactory.ParseString(text).WithFallback(fallback);
    }
}
