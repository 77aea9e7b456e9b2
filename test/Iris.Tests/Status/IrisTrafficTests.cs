using System.Diagnostics.Metrics;
using Iris.Grains.Status;
using Microsoft.Extensions.Time.Testing;

namespace Iris.Tests.Status;

/// <summary>The silo's traffic window: rates over the last 10 s and the second under way, latency percentiles from
/// log-scale buckets, and nothing left once the window has passed. A meter of the test's own, so that other tests'
/// traffic in this process does not count.</summary>
public class IrisTrafficTests
{
    [Fact]
    public void Rates_and_percentiles_cover_the_window_and_then_fall_to_zero()
    {
        var time = new FakeTimeProvider();
        using var meter = new Meter("Iris");
        var requests = meter.CreateCounter<long>("iris.requests");
        var handled = meter.CreateCounter<long>("iris.requests.handled");
        var tunnelMessages = meter.CreateCounter<long>("iris.tunnel.messages");
        var duration = meter.CreateHistogram<double>("iris.request.duration");
        using var traffic = new IrisTraffic(time, meter);

        // 5 s with 100 requests each: 90 of 1 ms and 10 of 100 ms; tunnel messages counted once sent, once received.
        for (var second = 0; second < 5; second++)
        {
            for (var i = 0; i < 100; i++)
            {
                requests.Add(1);
                handled.Add(1);
                duration.Record(i < 90 ? 1.0 : 100.0);
            }

            tunnelMessages.Add(10, new KeyValuePair<string, object?>("direction", "sent"));
            tunnelMessages.Add(10, new KeyValuePair<string, object?>("direction", "received"));
            time.Advance(TimeSpan.FromSeconds(1));
        }

        var status = traffic.Read();
        Assert.Equal(5, status.WindowSeconds);
        Assert.Equal(100, status.Requests, 3);
        Assert.Equal(100, status.Handled, 3);
        Assert.Equal(10, status.TunnelMessages, 3);
        Assert.Equal(500, status.RequestLatency.Count);
        Assert.InRange(status.RequestLatency.P50, 1.0, 1.1);
        Assert.InRange(status.RequestLatency.P90, 1.0, 1.1);
        Assert.InRange(status.RequestLatency.P99, 100.0, 100.0);
        Assert.Equal(100, status.RequestLatency.Max);
        Assert.Equal(0, status.HandOverLatency.Count);

        // Past the window, only what came since counts: the same 500 requests spread over 10.5 s.
        time.Advance(TimeSpan.FromSeconds(5.5));
        Assert.Equal(500 / 10.5, traffic.Read().Requests, 3);
        time.Advance(TimeSpan.FromSeconds(6));
        var later = traffic.Read();
        Assert.Equal(0, later.Requests);
        Assert.Equal(0, later.RequestLatency.Count);
        Assert.Equal(0, later.RequestLatency.P99);
    }
}
