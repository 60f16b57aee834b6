using System.Text.RegularExpressions;
using CoLM.Cluster.Configuration;

namespace CoLM.Deploy.Tests;

public sealed class DockerfileTests
{
    public static TheoryData<string> Dockerfiles => new() { "deploy/Dockerfile", "deploy/Dockerfile.cuda" };

    /// <summary>Instructions with their continuation lines joined, comments dropped.</summary>
    private static List<string> Instructions(string relative)
    {
        var result = new List<string>();
        string pending = "";
        foreach (string raw in File.ReadAllLines(Repo.PathOf(relative)))
        {
            string line = raw.Trim();
            if (line.StartsWith('#') || line.Length == 0)
                continue;
            if (line.EndsWith('\\'))
            {
                pending += line[..^1] + " ";
                continue;
            }
            result.Add(pending + line);
            pending = "";
        }
        return result;
    }

    [Theory]
    [MemberData(nameof(Dockerfiles))]
    public void Copied_paths_exist_in_the_repository(string dockerfile)
    {
        var copies = Instructions(dockerfile).Where(i => i.StartsWith("COPY ", StringComparison.Ordinal) && !i.Contains("--from=", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(copies);
        foreach (string copy in copies)
        {
            var words = copy.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Where(w => !w.StartsWith("--", StringComparison.Ordinal)).ToList();
            foreach (string source in words.SkipLast(1))
                Assert.True(File.Exists(Repo.PathOf(source)) || Directory.Exists(Repo.PathOf(source)), $"{dockerfile}: {source} does not exist");
        }
        // Everything the published project needs is copied: its sources, the embedded HOCON, the build props.
        string copied = string.Join('\n', copies);
        foreach (string needed in new[] { "src/", "hocon/", "build/", "Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props" })
            Assert.Contains(needed, copied, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Dockerfiles))]
    public void Publishes_the_cli_and_runs_the_colm_binary(string dockerfile)
    {
        var instructions = Instructions(dockerfile);
        string publish = instructions.Single(i => i.Contains("dotnet publish", StringComparison.Ordinal));
        string project = Regex.Match(publish, @"dotnet publish (\S+)").Groups[1].Value;
        Assert.True(File.Exists(Repo.PathOf(project)), project);
        Assert.Equal("src/CoLM.Cli/CoLM.Cli.csproj", project);
        string output = Regex.Match(publish, @" -o (\S+)").Groups[1].Value;

        string assemblyName = Regex.Match(File.ReadAllText(Repo.PathOf(project)), "<AssemblyName>(.*?)</AssemblyName>").Groups[1].Value;
        Assert.Equal("colm", assemblyName);
        Assert.Contains($"ENTRYPOINT [\"{output}/{assemblyName}\"]", instructions);
        Assert.Contains(instructions, i => i.StartsWith("CMD [\"node\"", StringComparison.Ordinal));
        Assert.Contains(instructions, i => i.StartsWith($"COPY --from=build {output} ", StringComparison.Ordinal));
        if (dockerfile.EndsWith(".cuda", StringComparison.Ordinal))
            Assert.Contains("-p:TorchBackend=cuda", publish, StringComparison.Ordinal);
        else
            Assert.DoesNotContain("TorchBackend", publish, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Dockerfiles))]
    public void Exposes_the_remoting_and_metrics_ports_and_listens_for_metrics_on_every_interface(string dockerfile)
    {
        var instructions = Instructions(dockerfile);
        var exposed = instructions.Where(i => i.StartsWith("EXPOSE ", StringComparison.Ordinal))
            .SelectMany(i => i.Split(' ').Skip(1)).ToHashSet();
        string metricsPort = HoconSources.Defaults().GetString("colm.telemetry.http-port");
        Assert.Contains(metricsPort, exposed);
        Assert.Contains("2551", exposed);
        Assert.Contains(instructions, i => i.Contains("COLM__TELEMETRY__HTTP_HOST=0.0.0.0", StringComparison.Ordinal));
        Assert.Contains(instructions, i => i.Contains("libgomp1", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Dockerfiles))]
    public void The_context_ignore_file_keeps_what_the_build_copies(string dockerfile)
    {
        string ignore = Repo.PathOf(dockerfile + ".dockerignore");
        Assert.True(File.Exists(ignore), ignore);
        var patterns = File.ReadAllLines(ignore).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        foreach (string kept in new[] { "src/", "hocon/", "build/" })
            Assert.DoesNotContain(kept, patterns);
        Assert.Contains("**/bin/", patterns);
        Assert.Contains("**/obj/", patterns);
    }
}
