using Akka.Actor;
using Akka.Event;

namespace CoLM.Cluster.Hosting;

/// <summary>
/// Akka's log events on stderr, one line each: "[akka ERROR] source: message (cause)". Stack
/// traces only with COLM_DEBUG=1. A peer disconnecting is not logged here: when that matters the
/// coordinator reports it as a run failure naming the node.
/// </summary>
public sealed class AkkaConsoleLogger : ReceiveActor
{
    private static readonly bool Debug = Environment.GetEnvironmentVariable("COLM_DEBUG") == "1";

    public AkkaConsoleLogger()
    {
        Receive<InitializeLogger>(_ => Sender.Tell(new LoggerInitialized()));
        Receive<LogEvent>(Write);
    }

    private static void Write(LogEvent e)
    {
        // Matched by name: Akka keeps these exception types internal.
        if (e is Error { Cause: { } c } && c.GetType().Name is "EndpointDisassociatedException" or "ShutDownAssociation") return;
        string level = e.LogLevel().ToString().Replace("Level", "").ToUpperInvariant();
        string line = $"[akka {level}] {e.LogSource}: {e.Message}";
        if (e is Error { Cause: { } cause })
            line += Debug ? Environment.NewLine + cause : $" ({cause.GetType().Name}: {cause.Message})";
        Console.Error.WriteLine(line);
    }
}
