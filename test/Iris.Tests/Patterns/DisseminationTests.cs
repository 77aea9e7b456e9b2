using System.Collections.Concurrent;
using System.Net;
using Iris.Dissemination;
using Iris.Protocol;

namespace Iris.Tests.Patterns;

public class DisseminationTests
{
    private static MemberEndpoint Silo(int i) => new(SiloAddress.New(new IPEndPoint(IPAddress.Loopback, 20000 + i), 1), 1);

    private static MemberEndpoint Client(int i) => new(null, 1) { Id = "client/" + i, Observer = new FakeObserver() };

    private sealed class FakeObserver : IMemberObserver
    {
        public Task<MemberAnswer> Request(Guid id, string cluster, byte[] request, TimeSpan remaining) => throw new NotSupportedException();

        public Task Deliver(Audience audience, Disseminated[] messages, MemberEndpoint[] forward) => throw new NotSupportedException();

        public Task<TunnelAccepted> OpenTunnel(string cluster, Guid id, MemberEndpoint opener, int openerWindow, TimeSpan remaining) =>
            throw new NotSupportedException();

        public Task<TunnelStatus> TunnelData(string from, Guid id, TunnelFrame[] frames) => throw new NotSupportedException();

        public Task<TunnelStatus> TunnelCredit(string from, Guid id, long grantedTotal) => throw new NotSupportedException();

        public Task TunnelFailed(string from, Guid id, TunnelCloseReason reason, string? detail) => throw new NotSupportedException();

        public Task<TunnelStatus[]> TunnelPing(string from, Guid[] ids) => throw new NotSupportedException();
    }

    /// <summary>Plays the receiving processes: each records a delivery (once per id, as member hosts do) and passes
    /// its share on; the dead ones fail before doing anything.</summary>
    private sealed class Network(ISet<string> dead, Func<Exception>? failure = null)
    {
        public ConcurrentDictionary<string, int> Deliveries { get; } = new();

        public ConcurrentDictionary<string, int> Calls { get; } = new();

        public int MaxShareOfClient { get; private set; }

        /// <summary>Where every process reports a receiver it gave up on (each member host logs it).</summary>
        public Action<MemberEndpoint, Exception>? Undelivered { get; init; }

        public async Task Send(MemberEndpoint target, MemberEndpoint[] share)
        {
            Calls.AddOrUpdate(target.Id, 1, (_, n) => n + 1);
            await Task.Yield();
            bool isDead;
            lock (dead)
            {
                isDead = dead.Contains(target.Id);
            }

            if (isDead)
            {
                throw failure?.Invoke() ?? new SiloUnavailableException("dead");
            }

            if (target.Observer is not null)
            {
                MaxShareOfClient = Math.Max(MaxShareOfClient, share.Length);
            }

            Deliveries.AddOrUpdate(target.Id, 1, (_, n) => n + 1);
            await Disseminator.SendAsync(share, Send, Undelivered);
        }
    }

    [Fact]
    public async Task Every_target_receives_once_and_no_process_sends_more_than_the_fan_out()
    {
        var targets = Enumerable.Range(0, 60).Select(Silo).Concat(Enumerable.Range(0, 25).Select(Client)).ToArray();
        var network = new Network(new HashSet<string>());
        var first = new List<MemberEndpoint>();
        await Disseminator.SendAsync(targets, (t, share) =>
        {
            first.Add(t);
            return network.Send(t, share);
        });

        Assert.Equal(targets.Select(t => t.Id).Order(), network.Deliveries.Keys.Order());
        Assert.All(network.Deliveries.Values, n => Assert.Equal(1, n));
        Assert.Equal(Disseminator.FanOut, first.Count);
        Assert.All(first, t => Assert.Null(t.Observer));
        Assert.Equal(0, network.MaxShareOfClient);
    }

    [Fact]
    public async Task A_dead_hop_is_taken_over_by_its_parent_so_its_share_still_receives()
    {
        var targets = Enumerable.Range(0, 40).Select(Silo).ToArray();
        var dead = targets.Where((_, i) => i % 3 == 0).Select(t => t.Id).ToHashSet();
        var network = new Network(dead);
        await Disseminator.SendAsync(targets, network.Send);

        var live = targets.Select(t => t.Id).Where(id => !dead.Contains(id)).Order();
        Assert.Equal(live, network.Deliveries.Keys.Order());
        Assert.All(network.Deliveries.Values, n => Assert.Equal(1, n));
        Assert.All(dead, id => Assert.Equal(1, network.Calls[id]));
    }

    [Fact]
    public async Task Only_clients_are_each_sent_directly_and_one_that_does_not_take_the_message_is_tried_again()
    {
        var targets = Enumerable.Range(0, 7).Select(Client).ToArray();
        var network = new Network(new HashSet<string> { "client/3" });
        // Tried again for 3 s from the first try, which has that long to fail on a busy machine; the growing pauses
        // (0.2, 0.4, 0.8, 1.6 s) allow five tries in it at most.
        await Disseminator.SendAsync(targets, network.Send, TimeSpan.FromSeconds(3));
        Assert.Equal(6, network.Deliveries.Count);
        Assert.Equal(0, network.MaxShareOfClient);
        Assert.All(targets.Where(t => t.Id != "client/3"), t => Assert.Equal(1, network.Calls[t.Id]));
        Assert.InRange(network.Calls["client/3"], 2, 10);
    }

    [Fact]
    public async Task A_client_between_gateways_gets_the_message_once_it_is_back()
    {
        var targets = Enumerable.Range(0, 3).Select(Silo).Concat(Enumerable.Range(0, 3).Select(Client)).ToArray();
        var away = new HashSet<string> { "client/1" };
        var network = new Network(away, static () => new TimeoutException("between gateways"));
        _ = Task.Delay(TimeSpan.FromMilliseconds(700)).ContinueWith(_ => { lock (away) { away.Clear(); } }, TaskScheduler.Default);
        await Disseminator.SendAsync(targets, network.Send, TimeSpan.FromSeconds(10));
        Assert.Equal(targets.Select(t => t.Id).Order(), network.Deliveries.Keys.Order());
        Assert.All(network.Deliveries.Values, n => Assert.Equal(1, n));
        Assert.True(network.Calls["client/1"] > 1);
    }

    [Fact]
    public async Task A_client_whose_delivery_call_is_never_answered_is_tried_again_within_the_persistence()
    {
        // Seen with a real gateway: the client reconnected to it, the gateway queued the call, the connection closed,
        // and the call went unanswered until Orleans' 30-s response timeout, past the persistence: never tried again.
        var targets = new[] { Client(0), Client(1), Client(2) };
        var network = new Network(new HashSet<string>());
        var lost = new TaskCompletionSource();
        var calls = 0;
        var send = Disseminator.SendAsync(
            targets,
            (target, share) => target.Id == "client/0" && Interlocked.Increment(ref calls) == 1 ? lost.Task : network.Send(target, share),
            TimeSpan.FromSeconds(15),
            clientTry: TimeSpan.FromMilliseconds(500));

        await send.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(targets.Select(t => t.Id).Order(), network.Deliveries.Keys.Order());
        Assert.All(network.Deliveries.Values, n => Assert.Equal(1, n));
        Assert.Equal(2, calls);

        // The call left behind fails later; nothing is delivered twice and nothing is left unobserved.
        lost.SetException(new TimeoutException("response timeout"));
    }

    [Fact]
    public async Task A_hop_that_answers_with_an_error_of_its_own_has_its_share_sent_by_its_parent_and_is_reported()
    {
        // Before: the error ended the hop's branch, and every process in its share went without the message.
        var targets = Enumerable.Range(0, 20).Select(Silo).ToArray();
        var failing = new HashSet<string> { targets[0].Id, targets[7].Id };
        var reported = new ConcurrentBag<(string Member, string Error)>();
        var network = new Network(failing, static () => new InvalidOperationException("handler host broke"))
        {
            Undelivered = (member, error) => reported.Add((member.Id, error.Message)),
        };
        await Disseminator.SendAsync(targets, network.Send, TimeSpan.FromSeconds(5), network.Undelivered);

        Assert.Equal(targets.Select(t => t.Id).Where(id => !failing.Contains(id)).Order(), network.Deliveries.Keys.Order());
        Assert.All(network.Deliveries.Values, n => Assert.Equal(1, n));
        Assert.Equal(failing.Order(), reported.Select(r => r.Member).Order());
        Assert.All(reported, r => Assert.Equal("handler host broke", r.Error));

        // Not tried again: it answered.
        Assert.All(failing, id => Assert.Equal(1, network.Calls[id]));
    }

    [Fact]
    public async Task A_receiver_given_up_on_is_reported_once_with_the_last_error()
    {
        var targets = Enumerable.Range(0, 5).Select(Silo).Concat(Enumerable.Range(0, 2).Select(Client)).ToArray();
        var reported = new ConcurrentBag<string>();
        var network = new Network(new HashSet<string> { targets[2].Id, "client/1" }) { Undelivered = (member, _) => reported.Add(member.Id) };
        await Disseminator.SendAsync(targets, network.Send, TimeSpan.FromMilliseconds(500), network.Undelivered);
        Assert.Equal(5, network.Deliveries.Count);
        Assert.Equal(new[] { targets[2].Id, "client/1" }.Order(), reported.Order());
    }
}
