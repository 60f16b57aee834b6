using System.Text.Json;
using Microsoft.Playwright;

namespace CoLM.System.Tests;

/// <summary>Runs only where Debian's Chromium is installed (CI: apt-get install -y chromium).</summary>
public sealed class RequiresChromiumFactAttribute : FactAttribute
{
    public const string Chromium = "/usr/bin/chromium";

    public RequiresChromiumFactAttribute()
    {
        if (!File.Exists(Chromium)) Skip = $"{Chromium} is not installed (Debian: apt-get install -y chromium)";
    }
}

/// <summary>
/// The dashboard in a real headless Chromium, driven by Playwright, against a real training run:
/// live (server push while `colm train` runs) and afterwards from the run directory
/// (`colm dashboard RUN_DIR`). The page must load with no console error and no request leaving
/// the machine.
/// </summary>
public sealed class DashboardBrowserTests : IDisposable
{
    private readonly TinyRun _tiny = new();

    public void Dispose() => _tiny.Dispose();

    [RequiresChromiumFact]
    public async Task The_live_page_draws_the_runs_rows_as_they_come_and_matches_metrics_jsonl_afterwards()
    {
        int port = LocalMachine.FreePort();
        const int SigInt = 2;
        int pid = 0;
        var train = ColmProcess.RunAsync(_tiny.Root, p => pid = p, ["train", "--quiet", .. TinyRun.SetArgs(_tiny.Sets("watched",
            "colm.train.steps=100000", "colm.train.eval-every=100", "colm.train.checkpoint-every=200",
            "colm.telemetry.http=on", $"colm.telemetry.http-port={port}"))]);
        var run = _tiny.RunPath("watched");
        await TinyRun.UntilMetricsShow(run, "step", train);

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await Launch(playwright);
        var (page, problems) = await Open(browser, port);

        // Live: the loss chart fills as the run goes on (pushed, the page never reloads).
        int first = await PointsWhen(page, "chart-loss", n => n >= 20);
        int later = await PointsWhen(page, "chart-loss", n => n >= first + 50);
        Assert.True(later > first);
        await PointsWhen(page, "chart-heldout-loss", n => n >= 2);
        // The membership view lists the node this run trains on.
        await page.WaitForFunctionAsync("() => window.colmDashboard.state.nodes.length === 1", null, new() { Timeout = 30_000 });
        string nodes = await page.InnerTextAsync("#nodes");
        Assert.Contains("akka.tcp://colm@", nodes);
        Assert.Contains("coordinator, trainer", nodes);
        Assert.Contains("running", await page.InnerTextAsync("#state"));
        Assert.Empty(problems);

        await page.CloseAsync();

        Assert.Equal(0, ColmNodes.SendSignal(pid, SigInt));
        var outcome = await train;
        Assert.True(outcome.ExitCode == 130, $"exit {outcome.ExitCode}\n{outcome.Stderr}");

        // Afterwards: the same page from the run directory holds exactly the rows of metrics.jsonl.
        int offlinePort = LocalMachine.FreePort();
        int dashboardPid = 0;
        var dashboard = ColmProcess.RunAsync(_tiny.Root, p => dashboardPid = p, ["dashboard", run, "--set", $"colm.telemetry.http-port={offlinePort}"]);
        try
        {
            await UntilAnswers(offlinePort, dashboard);
            var (offline, offlineProblems) = await Open(browser, offlinePort);
            var rows = File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
            long[] steps = [.. rows.Where(r => r.GetProperty("kind").GetString() == "step").Select(r => r.GetProperty("step").GetInt64())];
            long[] evals = [.. rows.Where(r => r.GetProperty("kind").GetString() == "eval").Select(r => r.GetProperty("step").GetInt64())];
            await PointsWhen(offline, "chart-loss", n => n == steps.Length);
            Assert.Equal(steps, (await Points(offline, "chart-loss")).Select(x => (long)x));
            Assert.Equal(evals, (await Points(offline, "chart-heldout-loss")).Select(x => (long)x));
            var losses = rows.Where(r => r.GetProperty("kind").GetString() == "step").Select(r => r.GetProperty("loss").GetDouble()).ToArray();
            var drawn = await offline.EvaluateAsync<double[]>("() => window.colmDashboard.values('chart-loss', 'train loss')");
            Assert.Equal(losses, drawn);
            Assert.Contains("stopped", await offline.InnerTextAsync("#state"));
            Assert.Equal(rows.Count(r => r.GetProperty("kind").GetString() == "checkpoint"),
                await offline.Locator("#checkpoints tbody tr").CountAsync());
            Assert.Empty(offlineProblems);
            // The screenshot in docs/ is of this real run (the README shows it).
            await offline.ScreenshotAsync(new() { Path = Path.Combine(LocalMachine.RepoRoot(), "docs", "dashboard.png"), FullPage = true });
        }
        finally
        {
            ColmNodes.SendSignal(dashboardPid, SigInt);
            await dashboard;
        }
    }

    private static async Task<IBrowser> Launch(IPlaywright playwright) =>
        await playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = RequiresChromiumFactAttribute.Chromium,
            Headless = true,
            // As root (CI) Chromium needs --no-sandbox; the rest keep it from calling home, which this closed network refuses.
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"],
        });

    /// <summary>Opens the dashboard, refusing (and noting) any request that leaves this host and noting every console error.</summary>
    private static async Task<(IPage Page, List<string> Problems)> Open(IBrowser browser, int port)
    {
        var problems = new List<string>();
        var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1400, Height = 1000 } });
        page.Console += (_, m) =>
        {
            if (m.Type == "error") lock (problems) problems.Add("console: " + m.Text);
        };
        page.PageError += (_, e) =>
        {
            lock (problems) problems.Add("page error: " + e);
        };
        string origin = $"http://127.0.0.1:{port}/";
        await page.RouteAsync("**/*", async route =>
        {
            if (route.Request.Url.StartsWith(origin, StringComparison.Ordinal)) await route.ContinueAsync();
            else
            {
                lock (problems) problems.Add("request left the machine: " + route.Request.Url);
                await route.AbortAsync();
            }
        });
        await page.GotoAsync(origin);
        return (page, problems);
    }

    private static async Task<double[]> Points(IPage page, string chart) =>
        await page.EvaluateAsync<double[]>($"() => window.colmDashboard.points('{chart}')");

    private static async Task<int> PointsWhen(IPage page, string chart, Func<int, bool> enough)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        int n = 0;
        while (DateTime.UtcNow < deadline)
        {
            n = (await Points(page, chart)).Length;
            if (enough(n)) return n;
            await Task.Delay(200);
        }
        throw new TimeoutException($"chart {chart} held {n} points after 60 s");
    }

    private static async Task UntilAnswers(int port, Task<ColmProcess.Outcome> process)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if (process.IsCompleted) throw new InvalidOperationException("colm dashboard exited: " + (await process).Stderr);
            try
            {
                await http.GetStringAsync($"http://127.0.0.1:{port}/healthz");
                return;
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }
            await Task.Delay(200);
        }
        throw new TimeoutException($"colm dashboard did not answer on port {port}");
    }
}
