using System.Collections.Concurrent;
using Iris.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Iris.Tests.Requests;

/// <summary>Leaving costs no request: members in client processes of their own, callers at full load.</summary>
public sealed class MemberLeaveTests
{
    [Fact]
    public async Task One_of_two_members_leaving_under_64_concurrent_callers_costs_no_request()
    {
        var network = new IrisNetwork(43000);
        await using var first = await network.StartSiloAsync(1);
        await using var second = await network.StartSiloAsync(2);
        await using var leaving = await network.StartMemberAsync("leaving");
        await using var staying = await network.StartMemberAsync("leaving");
        using var client = await network.StartClientAsync();
        var iris = client.Services.GetRequiredService<IIrisClient>();

        var ok = 0;
        var failures = new ConcurrentQueue<string>();
        using var stop = new CancellationTokenSource();
        // Timeouts far longer than a request takes: one that ran out of time on a busy machine would say nothing of the leave.
        var callers = Enumerable.Range(0, 64).Select(i => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    await iris.RequestAsync("leaving", [(byte)i], TimeSpan.FromSeconds(60));
                    Interlocked.Increment(ref ok);
                }
                catch (Exception e)
                {
                    failures.Enqueue($"{e.GetType().Name}: {e.Message}");
                }
            }
        })).ToArray();

        await Eventually.HoldsAsync(() => Volatile.Read(ref ok) > 500, "requests served before the leave", TimeSpan.FromSeconds(90));
        await leaving.SendAsync("leave");
        await leaving.WaitForAsync(l => l.Any(x => x.StartsWith("LEFT", StringComparison.Ordinal)), TimeSpan.FromSeconds(60), "the member left");
        var atLeave = Volatile.Read(ref ok);
        await Eventually.HoldsAsync(() => Volatile.Read(ref ok) > atLeave + 500, "requests served after the leave", TimeSpan.FromSeconds(90));
        await stop.CancelAsync();
        await Task.WhenAll(callers);

        Assert.True(failures.IsEmpty, $"{failures.Count} of {ok + failures.Count} requests failed, e.g. {string.Join(" | ", failures.Take(3))}");
        var served = int.Parse(leaving.Lines.Single(l => l.StartsWith("LEFT", StringComparison.Ordinal))["LEFT ".Length..], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(served > 0, "the leaving member served nothing before it left");
        await client.StopAsync();
    }
}
