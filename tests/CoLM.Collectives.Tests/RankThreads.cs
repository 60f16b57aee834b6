using Xunit.Sdk;

namespace CoLM.Collectives.Tests;

/// <summary>Runs one body per rank, each on its own dedicated thread, as trainers do.</summary>
internal static class RankThreads
{
    // A hang detector, not a speed bound: 500 back-to-back calls of 3 TCP ranks took over 10 s on
    // this 2-core machine under a load average of 15, so the bound is generous.
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    /// <summary>Returns what each rank threw (null where it returned normally).</summary>
    public static Exception?[] Run(int worldSize, Action<int> body)
    {
        var errors = new Exception?[worldSize];
        var threads = new Thread[worldSize];
        for (var r = 0; r < worldSize; r++)
        {
            var rank = r;
            threads[r] = new Thread(() =>
            {
                try
                {
                    body(rank);
                }
                catch (Exception e)
                {
                    errors[rank] = e;
                }
            })
            {
                IsBackground = true,
                Name = $"rank {rank}",
            };
        }

        foreach (var thread in threads)
        {
            thread.Start();
        }

        var deadline = DateTime.UtcNow + Limit;
        for (var r = 0; r < worldSize; r++)
        {
            var left = deadline - DateTime.UtcNow;
            if (!threads[r].Join(left > TimeSpan.Zero ? left : TimeSpan.Zero))
            {
                throw new XunitException($"rank {r} hung: still running after {Limit.TotalSeconds} s");
            }
        }

        return errors;
    }

    /// <summary>Runs the bodies and fails the test if any rank threw.</summary>
    public static void RunAll(int worldSize, Action<int> body)
    {
        var errors = Run(worldSize, body);
        var thrown = errors.OfType<Exception>().ToArray();
        if (thrown.Length > 0)
        {
            throw new AggregateException("a rank failed", thrown);
        }
    }
}
