using System.Diagnostics;
using Iris.Tests.Support;
using Iris.Tests.TestClusters;
using Iris.Tunnels;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;

namespace Iris.Tests.Requests;

/// <summary>Three silos and a client, shared by the tests of what a request, a broadcast and a tunnel open promise.</summary>
public sealed class GuaranteeCluster : IAsyncLifetime
{
    public TestCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync() => Cluster = await IrisTestCluster.DeployAsync(3);

    public async Task DisposeAsync() => await Cluster.DisposeAsync();
}

/// <summary>The request guarantees (docs/orleans.md, "Guarantees"), each tried with the fault that would break it.</summary>
public sealed class RequestGuaranteeTests(GuaranteeCluster fixture) : IClassFixture<GuaranteeCluster>
{
    private TestCluster Cluster => fixture.Cluster;

    private static string Name(string what) => $"{what}-{Guid.NewGuid():N}";

    /// <summary>Counts what reaches it; its broadcast handler runs until <paramref name="broadcastGate"/> completes, if
    /// given.</summary>
    private sealed class Counting(TimeSpan work, Task? broadcastGate = null) : IClusterHandler
    {
        public int Requests;
        public int BroadcastsStarted;
        public int Broadcasts;
        public int Tunnels;

        public async Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Requests);
            await Task.Delay(work, CancellationToken.None);
            return request;
        }

        public async Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref BroadcastsStarted);
            await (broadcastGate ?? Task.CompletedTask);
            Interlocked.Increment(ref Broadcasts);
        }

        public async Task HandleTunnelAsync(ITunnel tunnel, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Tunnels);
            await foreach (var message in tunnel.ReadAllAsync(cancellationToken))
            {
                await tunnel.SendAsync(message, cancellationToken);
            }
        }
    }

    [Fact]
    public async Task A_request_whose_answer_was_lost_is_repeated_to_the_same_member_with_its_id_and_runs_once()
    {
        // Two members: a repeat that went to the other one would run the request twice.
        var name = Name("lost-answer");
        var members = new[] { new Counting(TimeSpan.FromMilliseconds(200)), new Counting(TimeSpan.FromMilliseconds(200)) };
        await using var first = await Cluster.Silos[1].Iris().RegisterAsync(name, members[0]);
        await using var second = await Cluster.Silos[2].Iris().RegisterAsync(name, members[1]);
        for (var i = 0; i < 6; i++)
        {
            LostAnswers.Arm("Request", name, count: 2);
            Assert.Equal([4, (byte)i], await Cluster.Iris().RequestAsync(name, [4, (byte)i], TimeSpan.FromSeconds(10)));
            Assert.Equal(0, LostAnswers.Remaining("Request", name));
            Assert.Equal(i + 1, members.Sum(m => m.Requests));
        }
    }

    [Fact]
    public async Task A_request_whose_answer_is_lost_without_an_error_is_asked_again_well_before_the_response_timeout()
    {
        // A silo that dies with an answer on its way through it fails nothing: the caller would hear of it only when
        // Orleans' response timeout (5 s) ends the call, later than this caller's time (3 s). A second copy follows an
        // unanswered first after a second, gets the stored reply, and the request runs once.
        Assert.True(TimeSpan.FromSeconds(3) < Iris.Calls.CallPolicy.ReaskAfter);
        var name = Name("silent-loss");
        var members = new[] { new Counting(TimeSpan.FromMilliseconds(50)), new Counting(TimeSpan.FromMilliseconds(50)) };
        await using var first = await Cluster.Silos[1].Iris().RegisterAsync(name, members[0]);
        await using var second = await Cluster.Silos[2].Iris().RegisterAsync(name, members[1]);
        for (var i = 0; i < 3; i++)
        {
            LostAnswers.ArmSilent("Request", name);
            var calls = LostAnswers.Calls("Request", name);
            Assert.Equal([7, (byte)i], await Cluster.Iris().RequestAsync(name, [7, (byte)i], TimeSpan.FromSeconds(3)));
            Assert.Equal(0, LostAnswers.Remaining("Request", name));
            Assert.Equal(calls + 2, LostAnswers.Calls("Request", name));
            Assert.Equal(i + 1, members.Sum(m => m.Requests));
        }
    }

    [Fact]
    public async Task A_cancellation_from_inside_Orleans_is_not_the_callers_the_request_is_repeated_and_runs_once()
    {
        // A silo that addresses a call to a client member asks another silo's client directory; when that silo dies,
        // the lookup is cancelled and the call fails with OperationCanceledException, though the caller cancelled
        // nothing. The call may have run: it is repeated to the same member, with its id, and runs once.
        var name = Name("cancelled-inside");
        var members = new[] { new Counting(TimeSpan.FromMilliseconds(100)), new Counting(TimeSpan.FromMilliseconds(100)) };
        await using var first = await Cluster.Silos[1].Iris().RegisterAsync(name, members[0]);
        await using var second = await Cluster.Silos[2].Iris().RegisterAsync(name, members[1]);
        for (var i = 0; i < 4; i++)
        {
            LostAnswers.Arm("Request", name, count: 1, error: what => new OperationCanceledException(what));
            Assert.Equal([5, (byte)i], await Cluster.Iris().RequestAsync(name, [5, (byte)i], TimeSpan.FromSeconds(10)));
            Assert.Equal(0, LostAnswers.Remaining("Request", name));
            Assert.Equal(i + 1, members.Sum(m => m.Requests));
        }

        // The caller's own cancellation is still the caller's.
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Cluster.Iris().RequestAsync(name, [6], TimeSpan.FromSeconds(10), cancelled.Token));
    }

    [Fact]
    public async Task Overloaded_members_are_passed_over_and_only_when_all_are_overloaded_does_the_caller_hear_it()
    {
        var name = Name("overloaded");
        var small = new Counting(TimeSpan.Zero);
        var large = new Counting(TimeSpan.Zero);
        await using var a = await Cluster.Silos[0].Iris().RegisterAsync(name, small, new MemberLimits { MaxQueuedBytes = 100 });
        await using var b = await Cluster.Silos[1].Iris().RegisterAsync(name, large, new MemberLimits { MaxQueuedBytes = 100_000 });

        // Too large for one member, not for the other: every request is served, whichever member is chosen first.
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(1000, (await Cluster.Iris().RequestAsync(name, new byte[1000], TimeSpan.FromSeconds(5))).Length);
        }

        Assert.Equal(0, small.Requests);
        Assert.Equal(20, large.Requests);

        // Too large for both: overloaded, and it ran nowhere.
        var error = await Assert.ThrowsAsync<IrisOverloadedException>(() => Cluster.Iris().RequestAsync(name, new byte[200_000], TimeSpan.FromSeconds(5)));
        Assert.Contains(name, error.Message);
        Assert.Equal(20, large.Requests);
    }

    [Fact]
    public async Task A_member_that_refused_as_full_is_not_asked_again_until_it_may_have_room()
    {
        // One request at a time and one held: a second request finds a member full. Each member's first request
        // measures its handler time (1.5 s), which its refusals give as the time to stay away (at most 1 s).
        var name = Name("full");
        var members = new[] { new Gated(TimeSpan.FromSeconds(1.5)), new Gated(TimeSpan.FromSeconds(1.5)) };
        var limits = new MemberLimits { MaxConcurrentRequests = 1, MaxQueuedBytes = 10 };
        await using var a = await Cluster.Silos[0].Iris().RegisterAsync(name, members[0], limits);
        await using var b = await Cluster.Silos[1].Iris().RegisterAsync(name, members[1], limits);
        Task<byte[]> Request() => Cluster.Iris().RequestAsync(name, new byte[10], TimeSpan.FromSeconds(60));

        // Two at once: whichever member the second asks first is full, so it goes to the other one.
        await Task.WhenAll(Request(), Request());
        Assert.Equal([1, 1], members.Select(m => m.Requests));

        // Both members busy until the gates open; once what the second of these two was told has passed, a request
        // asks both, is refused by both, and is overloaded. The busy requests come from a silo, whose calls are not
        // counted below: a request unanswered for a second makes a second copy, and its copies are answered every 2.5 s
        // that the run is still going, each answer followed by another copy; counted, they would make these counts
        // depend on how late each of those came on a busy machine.
        Task<byte[]> Busy() => Cluster.Silos[2].Iris().RequestAsync(name, new byte[10], TimeSpan.FromSeconds(60));
        var busy = new[] { Busy(), Busy() };
        try
        {
            // 1.5 s: past the 1 s the first two requests were told.
            await Eventually.HoldsAsync(() => members.All(m => Volatile.Read(ref m.Requests) == 2), "both members run a second request");
            await Task.Delay(TimeSpan.FromSeconds(1.5));
            var calls = LostAnswers.Calls("Request", name);
            var started = Stopwatch.GetTimestamp();
            await Assert.ThrowsAsync<IrisOverloadedException>(Request);
            Assert.Equal(calls + 2, LostAnswers.Calls("Request", name));

            // The requests that follow are overloaded, and a member is asked again only once the 1 s it said it would
            // stay full has passed on this process's clock: each at most once per whole second these requests took,
            // however slowly they ran (at once: not at all). Without the wait, each request would ask both.
            const int Following = 20;
            for (var i = 0; i < Following; i++)
            {
                var error = await Assert.ThrowsAsync<IrisOverloadedException>(Request);
                Assert.Contains(name, error.Message);
            }

            var seconds = (int)((Stopwatch.GetTimestamp() - started) / Stopwatch.Frequency);
            var made = LostAnswers.Calls("Request", name) - calls;
            Assert.True(made <= members.Length * (seconds + 1), $"{made} calls for {Following + 1} requests in under {seconds + 1} s, though each member refused for 1 s at a time");
        }
        finally
        {
            Array.ForEach(members, m => m.Gate.TrySetResult());
        }

        // Once they have room again they are asked, and serve.
        await Task.WhenAll(busy);
        await Task.Delay(TimeSpan.FromSeconds(1));
        var before = LostAnswers.Calls("Request", name);
        Assert.Equal(10, (await Request()).Length);
        Assert.Equal(before + 1, LostAnswers.Calls("Request", name));
        Assert.Equal(5, members.Sum(m => m.Requests));
    }

    /// <summary>A member whose first request takes <paramref name="first"/> and whose later ones wait for
    /// <see cref="Gate"/>.</summary>
    private sealed class Gated(TimeSpan first) : IClusterHandler
    {
        public int Requests;

        public TaskCompletionSource Gate { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken)
        {
            await (Interlocked.Increment(ref Requests) == 1 ? Task.Delay(first, CancellationToken.None) : Gate.Task);
            return request;
        }

        public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken) => Task.CompletedTask;

        public Task HandleTunnelAsync(ITunnel tunnel, CancellationToken cancellationToken) => throw new InvalidOperationException("requests only");
    }

    [Fact]
    public async Task A_broadcast_returns_while_a_handler_is_still_running_and_each_member_gets_it_once()
    {
        var name = Name("slow-handler");
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var slow = new Counting(TimeSpan.Zero, broadcastGate: gate.Task);
        var members = new[] { new Counting(TimeSpan.Zero), new Counting(TimeSpan.Zero), new Counting(TimeSpan.Zero) };
        var registrations = new List<IAsyncDisposable>();
        try
        {
            registrations.Add(await Cluster.Silos[0].Iris().RegisterAsync(name, slow));
            registrations.Add(await Cluster.Silos[1].Iris().RegisterAsync(name, members[0]));
            registrations.Add(await Cluster.Silos[2].Iris().RegisterAsync(name, members[1]));
            registrations.Add(await Cluster.Iris().RegisterAsync(name, members[2]));

            // The slow member's handler does not finish until the gate opens, after both broadcasts have returned.
            await Cluster.Iris().BroadcastAsync(name, [1]).WaitAsync(TimeSpan.FromSeconds(30));
            await Cluster.Client.GetGrain<IClusterGrain>(name).Broadcast([2]).WaitAsync(TimeSpan.FromSeconds(30));
            await Eventually.SettlesAtAsync(() => members.Sum(m => Volatile.Read(ref m.Broadcasts)), 6, "both broadcasts at the three quick members");
            Assert.All(members, m => Assert.Equal(2, m.Broadcasts));
            await Eventually.HoldsAsync(() => Volatile.Read(ref slow.BroadcastsStarted) > 0, "the slow member's handler runs");
            Assert.Equal(0, Volatile.Read(ref slow.Broadcasts));
        }
        finally
        {
            gate.TrySetResult();
        }

        await Eventually.SettlesAtAsync(() => Volatile.Read(ref slow.Broadcasts), 2, "both broadcasts at the slow member");
        foreach (var registration in registrations)
        {
            await registration.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_broadcast_whose_hand_over_answer_was_lost_is_repeated_under_its_id_and_delivered_once()
    {
        var name = Name("lost-broadcast");
        var members = new[] { new Counting(TimeSpan.Zero), new Counting(TimeSpan.Zero) };
        await using var a = await Cluster.Silos[0].Iris().RegisterAsync(name, members[0]);
        await using var b = await Cluster.Iris().RegisterAsync(name, members[1]);
        LostAnswers.Arm("Disseminate", name, count: 2);

        await Cluster.Iris().BroadcastAsync(name, [1]);
        Assert.Equal(0, LostAnswers.Remaining("Disseminate", name));
        await Eventually.SettlesAtAsync(() => members.Sum(m => Volatile.Read(ref m.Broadcasts)), 2, "the broadcast at both members");
        Assert.All(members, m => Assert.Equal(1, m.Broadcasts));
    }

    [Fact]
    public async Task A_broadcast_whose_hand_over_was_dropped_on_its_way_goes_to_the_next_split_after_a_second_and_is_delivered_once()
    {
        // A rendezvous' silo that dies with the hand-over on its way to it fails nothing: the sender would hear of it
        // only when Orleans gives up on the call (its response timeout, or the silo declared dead: 5 to 13 s). A copy
        // to the name's next split follows after a second (and one to the split after that two seconds later, and so
        // on: HedgeTests); every split lists every member, and members drop an id they have seen.
        var name = Name("dropped-broadcast");
        var members = new[] { new Counting(TimeSpan.Zero), new Counting(TimeSpan.Zero) };
        await using var a = await Cluster.Silos[0].Iris().RegisterAsync(name, members[0]);
        await using var b = await Cluster.Iris().RegisterAsync(name, members[1]);
        await Cluster.Iris().BroadcastAsync(name, [1]);
        await Eventually.SettlesAtAsync(() => members.Sum(m => Volatile.Read(ref m.Broadcasts)), 2, "the first broadcast at both members");
        LostAnswers.ArmDropped("Disseminate", name);

        var started = Stopwatch.GetTimestamp();
        await Cluster.Iris().BroadcastAsync(name, [2]);
        var took = Stopwatch.GetElapsedTime(started);
        Assert.Equal(0, LostAnswers.Remaining("Disseminate", name));
        Assert.True(took < TimeSpan.FromSeconds(4), $"the broadcast was accepted after {took}, not soon after its dropped hand-over was followed by a copy");
        await Eventually.SettlesAtAsync(() => members.Sum(m => Volatile.Read(ref m.Broadcasts)), 4, "the second broadcast at both members");
        Assert.All(members, m => Assert.Equal(2, m.Broadcasts));
    }

    [Fact]
    public async Task Tunnel_data_dropped_on_its_way_without_an_error_is_sent_again_well_before_its_response_timeout()
    {
        // A silo that dies with a data call on its way through it fails nothing: the sender would hear of it only when
        // the call's response timeout ends it (8 s; the test's drop answers after 5 s). A second copy follows the
        // unanswered call after a second; frames carry their numbers, so a copy is harmless.
        var name = Name("dropped-data");
        var member = new Counting(TimeSpan.Zero);
        var silo = Cluster.Silos[2];
        await using var registration = await silo.Iris().RegisterAsync(name, member);
        await using var tunnel = await Cluster.Iris().OpenTunnelAsync(name, TimeSpan.FromSeconds(10));
        await tunnel.SendAsync(new byte[] { 1 });
        Assert.Equal([1], await tunnel.ReceiveAsync());

        LostAnswers.ArmDropped("TunnelData", silo.SiloAddress.ToParsableString());
        var started = Stopwatch.GetTimestamp();
        await tunnel.SendAsync(new byte[] { 2 });
        Assert.Equal([2], await tunnel.ReceiveAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        var took = Stopwatch.GetElapsedTime(started);
        Assert.Equal(0, LostAnswers.Remaining("TunnelData", silo.SiloAddress.ToParsableString()));
        Assert.True(took < TimeSpan.FromSeconds(4.5), $"the message came back after {took}, not soon after its dropped call was sent again");
        for (var i = 3; i < 10; i++)
        {
            await tunnel.SendAsync(new[] { (byte)i });
            Assert.Equal([(byte)i], await tunnel.ReceiveAsync());
        }
    }

    [Fact]
    public async Task A_tunnel_open_whose_answer_was_lost_has_exactly_one_member_end()
    {
        var name = Name("lost-open");
        var member = new Counting(TimeSpan.Zero);
        var silo = Cluster.Silos[2];
        await using var registration = await silo.Iris().RegisterAsync(name, member);
        LostAnswers.Arm("OpenTunnel", name, count: 1);

        await using var tunnel = await Cluster.Iris().OpenTunnelAsync(name, TimeSpan.FromSeconds(10));
        Assert.Equal(0, LostAnswers.Remaining("OpenTunnel", name));
        for (var i = 0; i < 20; i++)
        {
            await tunnel.SendAsync(new[] { (byte)i });
            Assert.Equal([(byte)i], await tunnel.ReceiveAsync());
        }

        Assert.Equal(1, member.Tunnels);
        Assert.Equal(1, silo.Services().GetRequiredService<LocalTunnels>().Count);
        await tunnel.CloseAsync();
        await Eventually.HoldsAsync(() => silo.Services().GetRequiredService<LocalTunnels>().Count == 0, "the member end closed with the tunnel");
    }
}
