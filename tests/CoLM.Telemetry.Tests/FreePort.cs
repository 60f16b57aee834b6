using System.Net;
using System.Net.Sockets;

namespace CoLM.Telemetry.Tests;

internal static class FreePort
{
    /// <summary>A TCP port that was free a moment ago (the hosts under test are given one).</summary>
    public static int Next()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}
