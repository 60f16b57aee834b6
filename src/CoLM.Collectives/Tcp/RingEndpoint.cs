using System.Net;
using System.Net.Sockets;

namespace CoLM.Collectives.Tcp;

/// <summary>"host:port" text as announced by <see cref="TcpRingCollective.LocalEndpoint"/>.</summary>
internal static class RingEndpoint
{
    public static string Format(string host, int port) =>
        host.Contains(':', StringComparison.Ordinal) && !host.StartsWith('[') ? $"[{host}]:{port}" : $"{host}:{port}";

    public static IPAddress ResolveHost(string host)
    {
        var bare = host.StartsWith('[') && host.EndsWith(']') ? host[1..^1] : host;
        if (IPAddress.TryParse(bare, out var address))
        {
            return address;
        }

        var addresses = Dns.GetHostAddresses(bare);
        return addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork)
            ?? addresses.FirstOrDefault()
            ?? throw new ArgumentException($"Host '{host}' has no address.", nameof(host));
    }

    public static IPEndPoint Parse(string endpoint)
    {
        var colon = endpoint.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(endpoint.AsSpan(colon + 1), out var port) || port is < 1 or > 65535)
        {
            throw new ArgumentException($"Endpoint '{endpoint}' is not 'host:port'.", nameof(endpoint));
        }

        return new IPEndPoint(ResolveHost(endpoint[..colon]), port);
    }
}
