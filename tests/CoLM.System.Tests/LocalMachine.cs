using System.Net;
using System.Net.Sockets;

namespace CoLM.System.Tests;

/// <summary>What the tests that start servers need to know about this machine and checkout.</summary>
internal static class LocalMachine
{
    /// <summary>A loopback TCP port that was free a moment ago.</summary>
    public static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    /// <summary>The repository root: the folder above the test binaries that holds CoLM.Cluster.sln.</summary>
    public static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "CoLM.Cluster.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("the repository root (CoLM.Cluster.sln) is not above the test binaries");
    }
}
