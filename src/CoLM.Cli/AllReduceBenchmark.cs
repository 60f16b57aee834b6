using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using CoLM.Collectives;
using CoLM.Collectives.Tcp;

namespace CoLM.Cli;

/// <summary>
/// `colm bench allreduce`: the TCP ring all-reduce on loopback, one thread per rank in this
/// process, against the loopback TCP limit measured in the same run (one thread streaming a large
/// buffer to another over one loopback socket). Reported per message size and world size, as in
/// nccl-tests: time per call, algbw = bytes / time and busbw = algbw * 2(n - 1) / n (what each
/// rank's link carries), and busbw as a share of the loopback limit. The in-process group runs at
/// the same sizes for reference.
/// <para>
/// Flags: <c>--ranks 2,4</c>, <c>--sizes 1,4,16,64,256</c> (MiB), <c>--iterations N</c> (timed calls
/// per row; by default fewer for larger messages), <c>--segment-kib K</c> (ring segment size),
/// <c>--no-in-process</c>, <c>--out FILE.md</c>.
/// </para>
/// </summary>
public static class AllReduceBenchmark
{
    /// <summary>The target: the ring's bus bandwidth at large messages relative to the loopback limit.</summary>
    private const double TargetShare = 0.5;
    private const int TargetFromMiB = 64;
    private const int MiB = 1 << 20;
    private const long LimitStreamBytes = 2L << 30;
    private const int SocketBufferBytes = 4 << 20;

    public static int Run(IReadOnlyList<string> args)
    {
        Options options;
        try
        {
            options = Options.Parse(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine(
                "usage: colm bench allreduce [--ranks 2,4] [--sizes 1,4,16,64,256] [--iterations N] [--segment-kib K] [--no-in-process] [--out FILE.md]");
            return 2;
        }

        Console.WriteLine($"measuring the loopback TCP limit ({LimitStreamBytes / MiB} MiB, one socket, one sender and one receiver thread)...");
        var (limit, limitPerCpu) = LoopbackLimit();
        Console.WriteLine($"loopback limit: {limit:F2} GB/s ({limitPerCpu:F2} GB per CPU-second)");

        var rows = new List<Row>();
        var shared = new Dictionary<int, double>();
        foreach (var ranks in options.Ranks)
        {
            shared[ranks] = LoopbackLimit(LimitStreamBytes, ranks).GBps;
            Console.WriteLine($"  {ranks} loopback streams at once: {shared[ranks]:F2} GB/s each");
            rows.AddRange(MeasureTcp(ranks, options));
            if (options.InProcess)
            {
                rows.AddRange(MeasureInProcess(ranks, options));
            }
        }

        var report = Report(rows, limit, shared, limitPerCpu, options);
        Console.WriteLine();
        Console.Write(report);
        if (options.Out is { } path)
        {
            File.WriteAllText(path, report);
            Console.WriteLine($"written to {path}");
        }

        return 0;
    }

    /// <summary>
    /// <paramref name="streams"/> sender threads each stream a buffer to their own receiver thread
    /// over their own loopback socket, all at once: the throughput of one stream (the aggregate
    /// divided by the streams) in GB/s, and GB moved per CPU-second of this process (a figure that
    /// other load on the machine distorts less). With one stream this is the loopback limit; with
    /// n it is what each of n links gets when, as in a ring of n ranks on one host, they share it.
    /// </summary>
    public static (double GBps, double GBPerCpuSecond) LoopbackLimit(long totalBytes = LimitStreamBytes, int streams = 1)
    {
        var pairs = Enumerable.Range(0, streams).Select(_ => LoopbackPair()).ToArray();
        try
        {
            var perStream = totalBytes / streams;
            var cpu = Environment.CpuUsage.TotalTime;
            var clock = Stopwatch.StartNew();
            var errors = new List<Exception>();
            Thread Guarded(Action body, string name) => new(() =>
            {
                try
                {
                    body();
                }
                catch (Exception e) when (e is SocketException or InvalidOperationException)
                {
                    lock (errors)
                    {
                        errors.Add(e);
                    }
                }
            })
            { IsBackground = true, Name = name };

            var threads = pairs.SelectMany(pair => new[]
            {
                Guarded(() => Stream(pair.Client, perStream), "loopback sender"),
                Guarded(() => Drain(pair.Server, perStream), "loopback receiver"),
            }).ToArray();
            Array.ForEach(threads, thread => thread.Start());
            Array.ForEach(threads, thread => thread.Join());
            if (errors.Count > 0)
            {
                throw new InvalidOperationException($"the loopback limit measurement failed: {errors[0].Message}", errors[0]);
            }

            var seconds = clock.Elapsed.TotalSeconds;
            var cpuSeconds = (Environment.CpuUsage.TotalTime - cpu).TotalSeconds;
            var moved = perStream * streams;
            return (moved / seconds / 1e9 / streams, moved / cpuSeconds / 1e9);
        }
        finally
        {
            foreach (var (client, server) in pairs)
            {
                client.Dispose();
                server.Dispose();
            }
        }
    }

    private static (Socket Client, Socket Server) LoopbackPair()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        Tune(client);
        client.Connect(listener.LocalEndPoint!);
        var server = listener.Accept();
        Tune(server);
        return (client, server);
    }

    private static void Stream(Socket socket, long totalBytes)
    {
        var chunk = new byte[4 * MiB];
        new Random(1).NextBytes(chunk);
        for (long sent = 0; sent < totalBytes; sent += chunk.Length)
        {
            socket.Send(chunk.AsSpan(0, (int)Math.Min(chunk.Length, totalBytes - sent)));
        }
    }

    private static void Drain(Socket socket, long totalBytes)
    {
        var sink = new byte[4 * MiB];
        for (long received = 0; received < totalBytes;)
        {
            var got = socket.Receive(sink);
            if (got == 0)
            {
                throw new InvalidOperationException("loopback sender closed early");
            }

            received += got;
        }
    }

    private static void Tune(Socket socket)
    {
        socket.NoDelay = true;
        socket.SendBufferSize = SocketBufferBytes;
        socket.ReceiveBufferSize = SocketBufferBytes;
    }

    private static IEnumerable<Row> MeasureTcp(int ranks, Options options)
    {
        var ringOptions = new TcpRingOptions(TimeSpan.FromMinutes(2), options.SegmentBytes);
        var rings = Enumerable.Range(0, ranks).Select(_ => new TcpRingCollective("127.0.0.1", ringOptions)).ToArray();
        try
        {
            var endpoints = rings.Select(ring => ring.LocalEndpoint).ToArray();
            OnRankThreads(ranks, r => rings[r].BeginGeneration(1, r, endpoints));
            foreach (var mib in options.SizesMiB)
            {
                var row = Measure("tcp ring", ranks, mib, options, r => rings[r]);
                Console.WriteLine($"  {row.Backend}, {ranks} ranks, {mib} MiB: {row.Milliseconds:F2} ms, busbw {row.BusGBps:F2} GB/s");
                yield return row;
            }
        }
        finally
        {
            Array.ForEach(rings, ring => ring.Dispose());
        }
    }

    private static IEnumerable<Row> MeasureInProcess(int ranks, Options options)
    {
        using var group = new InProcessCollectiveGroup(ranks, TimeSpan.FromMinutes(2));
        foreach (var mib in options.SizesMiB)
        {
            var row = Measure("in-process", ranks, mib, options, group.ForRank);
            Console.WriteLine($"  {row.Backend}, {ranks} ranks, {mib} MiB: {row.Milliseconds:F2} ms, busbw {row.BusGBps:F2} GB/s");
            yield return row;
        }
    }

    /// <summary>
    /// Warm-up calls, then timed calls between two barriers on every rank's thread; the time of a
    /// call is the slowest rank's total over the timed calls, divided by their number.
    /// </summary>
    private static Row Measure(string backend, int ranks, int mib, Options options, Func<int, ICollective> rank)
    {
        var bytes = (long)mib * MiB;
        var iterations = options.Iterations ?? Math.Clamp((int)(512L * MiB / bytes), 3, 20);
        var warmup = mib >= 64 ? 1 : 2;
        var elapsed = new double[ranks];
        TimeSpan cpuBefore = default, cpuAfter = default;
        using var barrier = new Barrier(ranks);
        OnRankThreads(ranks, r =>
        {
            var buffer = new float[bytes / sizeof(float)];
            Array.Fill(buffer, 1f);
            var collective = rank(r);
            for (var i = 0; i < warmup; i++)
            {
                collective.AllReduceSum(buffer);
            }

            barrier.SignalAndWait();
            if (r == 0)
            {
                cpuBefore = Environment.CpuUsage.TotalTime;
            }

            var clock = Stopwatch.StartNew();
            for (var i = 0; i < iterations; i++)
            {
                collective.AllReduceSum(buffer);
            }

            elapsed[r] = clock.Elapsed.TotalSeconds;
            barrier.SignalAndWait();
            if (r == 0)
            {
                cpuAfter = Environment.CpuUsage.TotalTime;
            }
        });

        var seconds = elapsed.Max() / iterations;
        var algbw = bytes / seconds / 1e9;

        // A ring all-reduce moves 2(n - 1)/n of the buffer over each of the n links.
        var linkBytes = 2.0 * (ranks - 1) * bytes * iterations;
        var perCpu = linkBytes / (cpuAfter - cpuBefore).TotalSeconds / 1e9;
        return new Row(backend, ranks, mib, iterations, seconds * 1e3, algbw, algbw * 2 * (ranks - 1) / ranks, perCpu);
    }

    private static void OnRankThreads(int ranks, Action<int> body)
    {
        var errors = new Exception?[ranks];
        var threads = Enumerable.Range(0, ranks).Select(r => new Thread(() =>
        {
            try
            {
                body(r);
            }
            catch (Exception e)
            {
                errors[r] = e;
            }
        })
        { IsBackground = true, Name = $"bench rank {r}" }).ToArray();
        Array.ForEach(threads, thread => thread.Start());
        Array.ForEach(threads, thread => thread.Join());
        if (errors.OfType<Exception>().FirstOrDefault() is { } error)
        {
            throw new InvalidOperationException($"a rank failed: {error.Message}", error);
        }
    }

    private static string Report(List<Row> rows, double limit, IReadOnlyDictionary<int, double> shared, double limitPerCpu, Options options)
    {
        var text = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        text.AppendLine("# colm bench allreduce");
        text.AppendLine();
        text.AppendLine(inv, $"Loopback TCP limit (one socket, one sender thread, one receiver thread): **{limit:F2} GB/s**. "
            + $"Ring segment: {options.SegmentBytes / 1024} KiB. {Environment.ProcessorCount} logical cores, "
            + $"load average {LoadAverage()} at the end.");
        text.AppendLine();
        text.AppendLine(inv, $"CPU cost: the raw copy moves {limitPerCpu:F2} GB per CPU-second of this process. For the ring, "
            + $"*link GB / CPU-s* counts the bytes all n links carry (2(n-1)/n of the buffer each) per CPU-second; "
            + $"its share of the raw copy's figure shows the ring's overhead per byte, whatever the core count.");
        text.AppendLine();
        var perLink = string.Join(", ", shared.Select(p => string.Create(inv, $"{p.Value:F2} GB/s (n = {p.Key})")));
        text.AppendLine($"Shared links: n loopback streams at once, each getting {perLink}. "
            + "A ring's n links all run at once and here share one host's cores, so *busbw / shared link* compares each link with what "
            + "a raw stream gets under the same sharing; on separate machines every link has its own, and the single-stream limit is the bound.");
        text.AppendLine();
        text.AppendLine("| backend | size (MiB) | ranks | iterations | time (ms) | algbw (GB/s) | busbw (GB/s) | busbw / limit | busbw / shared link | link GB / CPU-s | vs raw copy |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var row in rows)
        {
            var cpu = row.Backend == "tcp ring" ? $"{row.LinkGBPerCpuSecond:F2} | {100 * row.LinkGBPerCpuSecond / limitPerCpu:F0}%" : "- | -";
            text.AppendLine(inv, $"| {row.Backend} | {row.MiB} | {row.Ranks} | {row.Iterations} | {row.Milliseconds:F2} | {row.AlgGBps:F2} | {row.BusGBps:F2} | {100 * row.BusGBps / limit:F0}% | {100 * row.BusGBps / shared[row.Ranks]:F0}% | {cpu} |");
        }

        var large = rows.Where(row => row.Backend == "tcp ring" && row.MiB >= TargetFromMiB).ToList();
        text.AppendLine();
        if (large.Count == 0)
        {
            text.AppendLine(inv, $"Target (busbw >= {TargetShare:P0} of the limit at >= {TargetFromMiB} MiB): not measured (no size that large).");
        }
        else
        {
            var worst = large.MinBy(row => row.BusGBps)!;
            var met = worst.BusGBps >= TargetShare * limit;
            text.AppendLine(inv, $"Target (busbw >= {TargetShare:P0} of the limit at >= {TargetFromMiB} MiB): **{(met ? "met" : "not met")}**; "
                + $"lowest {worst.BusGBps:F2} GB/s = {100 * worst.BusGBps / limit:F0}% ({worst.MiB} MiB, {worst.Ranks} ranks).");
        }

        return text.ToString();
    }

    private static string LoadAverage()
    {
        try
        {
            return File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "unknown";
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    private sealed record Row(
        string Backend, int Ranks, int MiB, int Iterations, double Milliseconds, double AlgGBps, double BusGBps, double LinkGBPerCpuSecond);

    private sealed record Options(int[] Ranks, int[] SizesMiB, int? Iterations, int SegmentBytes, bool InProcess, string? Out)
    {
        public static Options Parse(IReadOnlyList<string> args)
        {
            var options = new Options([2, 4], [1, 4, 16, 64, 256], null, 1 << 20, true, null);
            for (var i = 0; i < args.Count; i++)
            {
                string Value() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
                options = args[i] switch
                {
                    "--ranks" => options with { Ranks = PositiveList(Value(), "--ranks") },
                    "--sizes" => options with { SizesMiB = PositiveList(Value(), "--sizes") },
                    "--iterations" => options with { Iterations = PositiveList(Value(), "--iterations").Single() },
                    "--segment-kib" => options with { SegmentBytes = checked(PositiveList(Value(), "--segment-kib").Single() * 1024) },
                    "--no-in-process" => options with { InProcess = false },
                    "--out" => options with { Out = Value() },
                    _ => throw new ArgumentException($"unknown flag '{args[i]}'"),
                };
            }

            if (options.Ranks.Any(r => r < 2) || options.SizesMiB.Any(s => s > 1024))
            {
                throw new ArgumentException("--ranks must be at least 2 and --sizes at most 1024 MiB");
            }

            return options;
        }

        private static int[] PositiveList(string text, string flag)
        {
            var values = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var parsed = new int[values.Length];
            for (var i = 0; i < values.Length; i++)
            {
                if (!int.TryParse(values[i], NumberStyles.None, CultureInfo.InvariantCulture, out parsed[i]) || parsed[i] < 1)
                {
                    throw new ArgumentException($"{flag}: '{values[i]}' is not a positive integer");
                }
            }

            return parsed.Length > 0 ? parsed : throw new ArgumentException($"{flag} needs at least one value");
        }
    }
}
