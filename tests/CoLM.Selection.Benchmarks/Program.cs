using BenchmarkDotNet.Running;

namespace CoLM.Selection.Benchmarks;

/// <summary>
/// The selection engine's speed: `dotnet run -c Release --project tests/CoLM.Selection.Benchmarks -- --filter '*'`.
/// Any BenchmarkDotNet switch works (`--list flat`, `--filter '*LazyGreedy*'`).
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
