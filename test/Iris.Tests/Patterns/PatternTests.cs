using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Iris.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Iris.Tests.Patterns;

/// <summary>Request/reply, broadcast and publish/subscribe between two Iris silos.</summary>
public sealed class PatternTests(IrisClusterFixture cluster) : IClassFixture<IrisClusterFixture>
{
    private sealed class Handler(Func<byte[], CancellationToken, Task<byte[]>> request) : IClusterHandler
    {
        public ConcurrentBag<string> Broadcasts { get; } = [];

        public Task<byte[]> HandleRequestAsync(byte[] payload, CancellationToken cancellationToken) => request(payload, cancellationToken);

        public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken)
        {
            Broadcasts.Add(Encoding.UTF8.GetString(message));
            return Task.CompletedTask;
        }
    }

    private sealed class Subscriber : ITopicHandler
    {
        public ConcurrentBag<string> Messages { get; } = [];

        public Task HandlePublishAsync(byte[] message, CancellationToken cancellationToken)
        {
            Messages.Add(Encoding.UTF8.GetString(message));
            return Task.CompletedTask;
        }
    }

    private static Handler Echo() => new((payload, _) => Task.FromResult(payload));

    private static string Name(string pattern) => $"{pattern}-{Guid.NewGuid():N}";

    [Fact]
    public async Task A_request_reaches_a_member_on_another_silo_and_its_reply_comes_back()
    {
        var name = Name("echo");
        await using var member = await cluster.IrisA.RegisterAsync(name, Echo());
        var reply = await cluster.GrainsB.GetGrain<IClusterGrain>(name).Request(Encoding.UTF8.GetBytes("hello"), TimeSpan.FromSeconds(5));
        Assert.Equal("hello", Encoding.UTF8.GetString(reply));
        Assert.Equal("again", Encoding.UTF8.GetString(await cluster.IrisB.RequestAsync(name, Encoding.UTF8.GetBytes("again"), TimeSpan.FromSeconds(5))));
    }

    [Fact]
    public async Task A_member_hosted_by_the_silo_from_its_configuration_serves_requests()
    {
        var reply = await cluster.IrisB.RequestAsync("fixture-echo", [7, 7], TimeSpan.FromSeconds(5));
        Assert.Equal([7, 7], reply);
    }

    [Fact]
    public async Task A_slow_broadcast_does_not_hold_up_requests_to_the_same_cluster()
    {
        var name = Name("slow-broadcast");
        var handlers = new HeldBroadcasts();
        try
        {
            await using var member = await cluster.IrisA.RegisterAsync(name, handlers);

            // One broadcast after another, so each goes alone through the next split's rendezvous; every handler stays
            // held. Past the member lists' cache time, every request asks a rendezvous that disseminated a broadcast
            // whose handler has not finished: were anything waiting for handlers, the requests would never come back.
            for (var i = 0; i < 4; i++)
            {
                await cluster.IrisB.BroadcastAsync(name, [1]).WaitAsync(TimeSpan.FromSeconds(30));
            }

            await Eventually.HoldsAsync(() => handlers.Held == 4, "four broadcast handlers held");
            await Task.Delay(Iris.Balancing.MemberDirectory.CacheTime + TimeSpan.FromMilliseconds(200));
            for (var i = 0; i < 4; i++)
            {
                await cluster.IrisB.RequestAsync(name, [2], TimeSpan.FromSeconds(30));
            }

            Assert.Equal(4, handlers.Held);
        }
        finally
        {
            handlers.Release();
        }
    }

    /// <summary>Broadcast handlers that wait until released; requests are echoed.</summary>
    private sealed class HeldBroadcasts : IClusterHandler
    {
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _held;

        /// <summary>Handlers started and not yet released.</summary>
        public int Held => Volatile.Read(ref _held);

        public void Release() => _release.TrySetResult();

        public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken) => Task.FromResult(request);

        public async Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _held);
            await _release.Task;
            Interlocked.Decrement(ref _held);
        }
    }

    [Fact]
    public async Task A_request_to_a_cluster_without_members_fails_fast()
    {
        var clock = Stopwatch.StartNew();
        // Far less than the time the caller would wait: it is told, not left to time out (the names' rendezvous may be
        // activated on the way, which a busy machine makes slow).
        var error = await Assert.ThrowsAsync<NoMembersException>(() => cluster.GrainsB.GetGrain<IClusterGrain>("nobody-serves-this").Request([1], TimeSpan.FromMinutes(5)));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"took {clock.Elapsed}");
        Assert.Contains("nobody-serves-this", error.Message);
    }

    [Fact]
    public async Task A_handler_exception_arrives_as_a_remote_exception_with_its_message()
    {
        var name = Name("failing");
        await using var member = await cluster.IrisA.RegisterAsync(name, new Handler((_, _) => throw new InvalidOperationException("disk full")));
        var error = await Assert.ThrowsAsync<RemoteException>(() => cluster.IrisB.RequestAsync(name, [1], TimeSpan.FromSeconds(5)));
        Assert.Equal("disk full", error.RemoteMessage);
        Assert.Contains(name, error.Message);
    }

    [Fact]
    public async Task The_timeout_is_honoured()
    {
        var name = Name("slow");
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            await using var member = await cluster.IrisA.RegisterAsync(name, new Handler(async (payload, token) =>
            {
                await release.Task;
                return payload;
            }));
            var clock = Stopwatch.StartNew();
            await Assert.ThrowsAsync<IrisTimeoutException>(() => cluster.IrisB.RequestAsync(name, [1], TimeSpan.FromMilliseconds(300)));

            // The handler never finishes before the caller is told: any answer at all is the timeout's doing.
            Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(30));
        }
        finally
        {
            release.TrySetResult();
        }
    }

    [Fact]
    public async Task With_one_handler_slot_slow_requests_run_one_after_another()
    {
        var name = Name("serial");
        var running = 0;
        var most = 0;
        await using var member = await cluster.IrisA.RegisterAsync(name, new Handler(async (payload, _) =>
        {
            var now = Interlocked.Increment(ref running);
            InterlockedMax(ref most, now);
            await Task.Delay(150);
            Interlocked.Decrement(ref running);
            return payload;
        }), new MemberLimits { MaxConcurrentRequests = 1 });

        await Task.WhenAll(Enumerable.Range(0, 4).Select(i => cluster.IrisB.RequestAsync(name, [(byte)i], TimeSpan.FromSeconds(10))));
        Assert.Equal(1, most);
    }

    [Fact]
    public async Task A_request_over_the_queued_bytes_limit_is_refused_while_smaller_ones_pass()
    {
        var name = Name("small");
        await using var member = await cluster.IrisA.RegisterAsync(name, Echo(), new MemberLimits { MaxQueuedBytes = 1000 });
        var error = await Assert.ThrowsAsync<IrisOverloadedException>(() => cluster.IrisB.RequestAsync(name, new byte[2000], TimeSpan.FromSeconds(5)));
        Assert.Contains(name, error.Message);
        Assert.Equal(100, (await cluster.IrisB.RequestAsync(name, new byte[100], TimeSpan.FromSeconds(5))).Length);
    }

    [Fact]
    public async Task A_broadcast_reaches_every_member_on_every_silo_exactly_once()
    {
        var name = Name("everyone");
        var onA = Echo();
        var onB = Echo();
        var alsoOnB = Echo();
        await using var a = await cluster.IrisA.RegisterAsync(name, onA);
        await using var b = await cluster.IrisB.RegisterAsync(name, onB);
        await using var c = await cluster.IrisB.RegisterAsync(name, alsoOnB);
        await cluster.GrainsA.GetGrain<IClusterGrain>(name).Broadcast(Encoding.UTF8.GetBytes("news"));
        await Eventually.SettlesAtAsync(() => onA.Broadcasts.Count + onB.Broadcasts.Count + alsoOnB.Broadcasts.Count, 3, "broadcasts delivered");
        Assert.Equal(["news"], onA.Broadcasts);
        Assert.Equal(["news"], onB.Broadcasts);
        Assert.Equal(["news"], alsoOnB.Broadcasts);
    }

    [Fact]
    public async Task Messages_from_a_process_reach_its_own_members_at_once_and_once_and_the_others_once()
    {
        // The sending process hands its own members and subscribers each message as it is sent; the rendezvous's copy
        // for that process must then be dropped, not delivered a second time.
        var name = Name("local-first");
        var topic = Name("local-topic");
        var local = Echo();
        var alsoLocal = Echo();
        var remote = Echo();
        var localSubscriber = new Subscriber();
        var remoteSubscriber = new Subscriber();
        await using var a = await cluster.IrisA.RegisterAsync(name, local);
        await using var b = await cluster.IrisA.RegisterAsync(name, alsoLocal);
        await using var c = await cluster.IrisB.RegisterAsync(name, remote);
        await using var s1 = await cluster.IrisA.SubscribeAsync(topic, localSubscriber);
        await using var s2 = await cluster.IrisB.SubscribeAsync(topic, remoteSubscriber);

        const int Count = 200;
        var expected = Enumerable.Range(0, Count).Select(i => $"m{i}").ToArray();
        await Task.WhenAll(expected.Select(m => cluster.IrisA.BroadcastAsync(name, Encoding.UTF8.GetBytes(m))));
        await Task.WhenAll(expected.Select(m => cluster.IrisA.PublishAsync(topic, Encoding.UTF8.GetBytes(m))));
        await Eventually.SettlesAtAsync(
            () => local.Broadcasts.Count + alsoLocal.Broadcasts.Count + remote.Broadcasts.Count + localSubscriber.Messages.Count + remoteSubscriber.Messages.Count,
            5 * Count,
            "messages delivered");
        foreach (var received in new[] { local.Broadcasts, alsoLocal.Broadcasts, remote.Broadcasts, localSubscriber.Messages, remoteSubscriber.Messages })
        {
            Assert.Equal(expected.Order(StringComparer.Ordinal), received.Order(StringComparer.Ordinal));
        }
    }

    [Fact]
    public async Task A_publication_reaches_every_subscriber_registered_before_it()
    {
        var topic = Name("topic");
        var first = new Subscriber();
        var second = new Subscriber();
        await using var s1 = await cluster.IrisA.SubscribeAsync(topic, first);
        await using var s2 = await cluster.IrisB.SubscribeAsync(topic, second);
        await cluster.GrainsB.GetGrain<ITopicGrain>(topic).Publish(Encoding.UTF8.GetBytes("tick"));
        await Eventually.SettlesAtAsync(() => first.Messages.Count + second.Messages.Count, 2, "publications delivered");
        Assert.Equal(["tick"], first.Messages);
        Assert.Equal(["tick"], second.Messages);

        await s2.DisposeAsync();
        await cluster.IrisA.PublishAsync(topic, Encoding.UTF8.GetBytes("tock"));
        await Eventually.SettlesAtAsync(() => first.Messages.Count, 2, "second publication delivered");
        Assert.Single(second.Messages);
    }

    [Fact]
    public async Task Requests_spread_over_members_in_proportion_to_capacity()
    {
        var name = Name("weighted");
        var counts = new ConcurrentDictionary<string, int>();
        // Both handlers take the same few milliseconds, so capacity (slots over the measured time a request takes) is
        // one to three whatever else the machine is doing; a handler that returns at once would be timed as noise.
        async Task<byte[]> Work(string member, byte[] payload)
        {
            counts.AddOrUpdate(member, 1, (_, n) => n + 1);
            await Task.Delay(3);
            return payload;
        }

        await using var small = await cluster.IrisA.RegisterAsync(name, new Handler((p, _) => Work("A", p)), new MemberLimits { MaxConcurrentRequests = 1 });
        await using var large = await cluster.IrisB.RegisterAsync(name, new Handler((p, _) => Work("B", p)), new MemberLimits { MaxConcurrentRequests = 3 });
        // On a busy machine the two handlers' measured times differ (a 3 ms delay takes 3 to 15 ms), and with them the
        // capacities the members offer: the share is compared with what they offered during the run, sampled as it
        // goes, not with the 3:1 of their slots alone.
        var membersA = cluster.A.Services.GetRequiredService<Iris.Members.LocalMembers>();
        var membersB = cluster.B.Services.GetRequiredService<Iris.Members.LocalMembers>();
        var offered = new List<double>();
        for (var i = 0; i < 400; i++)
        {
            await cluster.IrisA.RequestAsync(name, [1], TimeSpan.FromSeconds(5));
            if (i % 20 == 19)
            {
                var (a, b) = (membersA.Capacity(name), membersB.Capacity(name));
                offered.Add(b / (a + b));
            }
        }

        var share = counts.GetValueOrDefault("B") / 400.0;
        var expected = offered.Average();
        Assert.True(
            Math.Abs(share - expected) <= 0.12 && share > 0.55,
            $"B got {share:P0} of the requests; it offered {expected:P0} of the capacity on average ({string.Join(", ", offered.Select(o => o.ToString("P0", System.Globalization.CultureInfo.InvariantCulture)))})");
    }

    [Fact]
    public async Task Requests_failures_and_members_show_on_the_iris_meter()
    {
        var totals = new ConcurrentDictionary<string, long>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "Iris")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var suffix = string.Concat(tags.ToArray().Select(t => $"|{t.Key}={t.Value}"));
            totals.AddOrUpdate(instrument.Name + suffix, value, (_, v) => v + value);
        });
        listener.Start();

        var name = Name("metered");
        await using (await cluster.IrisA.RegisterAsync(name, Echo()))
        {
            await cluster.IrisB.RequestAsync(name, new byte[10], TimeSpan.FromSeconds(5));
        }

        await Assert.ThrowsAsync<NoMembersException>(() => cluster.IrisB.RequestAsync("nobody-" + name, [1], TimeSpan.FromSeconds(5)));
        listener.RecordObservableInstruments();
        Assert.True(totals.GetValueOrDefault("iris.requests") >= 2);
        Assert.True(totals.GetValueOrDefault("iris.request.failures|error=no_members") >= 1);
        Assert.True(totals.GetValueOrDefault("iris.bytes|direction=request") >= 11);
        Assert.Equal(0, totals[$"iris.members|kind=cluster|name={name}"]);
    }

    [Fact]
    public async Task Rendezvous_grains_live_on_the_silo_whose_overlay_node_is_the_root_of_their_name()
    {
        var silos = new[] { cluster.A, cluster.B }.Select(h => (
            Overlay: h.Services.GetRequiredService<Iris.Ring.IrisOverlay>(),
            Silo: h.Services.GetRequiredService<ILocalSiloDetails>().SiloAddress)).ToList();
        var placed = new HashSet<SiloAddress>();
        for (var i = 0; i < 12; i++)
        {
            var key = Iris.Protocol.Audience.Cluster(Name("placed")).RendezvousKey(0);
            var rendezvous = cluster.GrainsA.GetGrain<Iris.Protocol.IRendezvousGrain>(key);
            await rendezvous.GetMembers();
            var where = await rendezvous.GetSilo();
            var root = silos.Single(s => s.Overlay.Host!.Node.IsRootFor(Iris.Placement.RendezvousPlacement.KeyOf(key))).Silo;
            Assert.Equal(root, where);
            placed.Add(where);
        }

        Assert.Equal(2, placed.Count);
    }

    [Fact]
    public async Task A_member_is_known_to_every_split_of_its_cluster_and_requests_rotate_over_them()
    {
        var name = Name("split");
        await using var member = await cluster.IrisA.RegisterAsync(name, Echo());
        foreach (var key in Iris.Protocol.Audience.Cluster(name).RendezvousKeys())
        {
            Assert.Single(await cluster.GrainsB.GetGrain<Iris.Protocol.IRendezvousGrain>(key).GetMembers());
        }

        Assert.Equal(4, Iris.Protocol.Audience.Cluster(name).RendezvousKeys().Distinct().Count());
        for (var i = 0; i < 8; i++)
        {
            Assert.Equal([(byte)i], await cluster.IrisB.RequestAsync(name, [(byte)i], TimeSpan.FromSeconds(5)));
        }
    }

    [Fact]
    public async Task A_request_whose_handler_outlasts_the_repeat_window_gets_its_reply_and_runs_once()
    {
        // Its caller's call ends in Orleans' response timeout; the copies it sends then hear that the run is going.
        var name = Name("long");
        var runs = 0;
        await using var member = await cluster.IrisA.RegisterAsync(name, new Handler(async (payload, _) =>
        {
            Interlocked.Increment(ref runs);
            await Task.Delay(Iris.Calls.CallPolicy.RepeatWindow + TimeSpan.FromSeconds(3));
            return payload;
        }));

        Assert.Equal([5], await cluster.IrisB.RequestAsync(name, [5], TimeSpan.FromSeconds(40)));
        Assert.Equal(1, runs);
    }

    [Fact]
    public async Task A_request_to_a_member_in_the_same_process_shares_no_array_with_its_caller_and_runs_once()
    {
        var name = Name("here");
        var constant = new byte[] { 42 };
        byte[]? seen = null;
        var runs = 0;
        await using var member = await cluster.IrisA.RegisterAsync(name, new Handler((payload, _) =>
        {
            Interlocked.Increment(ref runs);
            seen = payload;
            payload[0] = 99;
            return Task.FromResult(constant);
        }));
        var request = new byte[] { 1 };

        var reply = await cluster.IrisA.RequestAsync(name, request, TimeSpan.FromSeconds(5));

        // Served without leaving the process, yet as a call through Orleans would be: by copies.
        Assert.Equal(1, runs);
        Assert.NotSame(request, seen);
        Assert.Equal([1], request);
        Assert.NotSame(constant, reply);
        reply[0] = 7;
        Assert.Equal([42], constant);
    }

    [Fact]
    public async Task Of_two_members_one_ten_times_slower_the_fast_one_gets_clearly_more()
    {
        var name = Name("speed");
        var counts = new ConcurrentDictionary<string, int>();
        Handler Timed(string who, int milliseconds) => new(async (payload, _) =>
        {
            await Task.Delay(milliseconds);
            counts.AddOrUpdate(who, 1, (_, n) => n + 1);
            return payload;
        });
        var limits = new MemberLimits { MaxConcurrentRequests = 8 };
        await using var fast = await cluster.IrisA.RegisterAsync(name, Timed("fast", 10), limits);
        // Ten times: a busy machine adds its scheduling delay to both service times, which narrows the gap.
        await using var slow = await cluster.IrisB.RegisterAsync(name, Timed("slow", 100), limits);
        var end = DateTime.UtcNow.AddSeconds(3);
        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            while (DateTime.UtcNow < end)
            {
                await cluster.IrisA.RequestAsync(name, [1], TimeSpan.FromSeconds(5));
            }
        })));
        var total = counts.Values.Sum();
        Assert.True(counts.GetValueOrDefault("fast") > 1.5 * counts.GetValueOrDefault("slow"), $"fast {counts.GetValueOrDefault("fast")}, slow {counts.GetValueOrDefault("slow")} of {total}");
    }

    [Fact]
    public async Task Requests_keep_flowing_under_sustained_load()
    {
        var name = Name("load");
        await using var member = await cluster.IrisA.RegisterAsync(name, Echo());
        var ok = 0;
        var failures = new ConcurrentQueue<string>();
        var end = DateTime.UtcNow.AddSeconds(3);
        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            while (DateTime.UtcNow < end)
            {
                try
                {
                    await cluster.IrisB.RequestAsync(name, [1], TimeSpan.FromSeconds(30));
                    Interlocked.Increment(ref ok);
                }
                catch (Exception e)
                {
                    failures.Enqueue(e.GetType().Name + ": " + e.Message);
                }
            }
        })));
        Assert.True(failures.IsEmpty, $"{ok} ok; failures: {string.Join(" | ", failures.Take(3))}");
        Assert.True(ok > 0, "no request came back in 3 s");
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}
