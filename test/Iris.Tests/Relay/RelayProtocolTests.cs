using System.Text;
using Iris.Tests.Support;

namespace Iris.Tests.Relay;

/// <summary>The relay protocol against real silos, with a client written from the protocol's description: every
/// message type, Orleans and relay traffic both ways, and what a client that breaks the protocol gets.</summary>
public sealed class RelayProtocolTests(RelayFixture fixture) : IClassFixture<RelayFixture>
{
    private static readonly TimeSpan Second = TimeSpan.FromSeconds(1);

    private static string Unique(string what) => $"relay-{what}-{Guid.NewGuid():N}";

    [Fact]
    public async Task A_wrong_magic_or_version_is_denied_with_a_reason_that_names_both_versions()
    {
        var magic = await Assert.ThrowsAsync<RelayDeniedException>(() => RelayTestClient.ConnectAsync(fixture.RelayA, magic: "not-iris"));
        Assert.Contains("magic", magic.Message);
        var version = await Assert.ThrowsAsync<RelayDeniedException>(() => RelayTestClient.ConnectAsync(fixture.RelayA, version: "v0.9"));
        Assert.Contains("v0.9", version.Message);
        Assert.Contains("v1.0-draft2", version.Message);
    }

    [Fact]
    public async Task A_request_right_after_registration_reaches_the_new_member_and_none_reaches_it_after_it_left()
    {
        var cluster = Unique("join");
        await using var caller = await RelayTestClient.ConnectAsync(fixture.RelayB);
        for (var round = 0; round < 3; round++)
        {
            var member = await RelayTestClient.ConnectAsync(fixture.RelayA, cluster, new RelayMemberHandler { Request = r => Task.FromResult(Encoding.UTF8.GetBytes($"member {round}")) });
            Assert.Equal($"member {round}", Encoding.UTF8.GetString(await caller.RequestAsync(cluster, [1], 5 * Second)));
            Assert.Equal(string.Empty, await member.CloseAsync());
            await member.DisposeAsync();
        }

        var fault = await Assert.ThrowsAsync<RelayFaultException>(() => caller.RequestAsync(cluster, [1], 5 * Second));
        Assert.Contains(cluster, fault.Message);
    }

    [Fact]
    public async Task Replies_and_faults_reach_the_caller_unchanged()
    {
        var cluster = Unique("reply");
        await using var member = await RelayTestClient.ConnectAsync(fixture.RelayA, cluster, new RelayMemberHandler
        {
            Request = r => r[0] == 0 ? throw new InvalidOperationException("fault text, exactly") : Task.FromResult(r.Reverse().ToArray()),
        });
        await using var caller = await RelayTestClient.ConnectAsync(fixture.RelayB);
        Assert.Equal(new byte[] { 3, 2, 1 }, await caller.RequestAsync(cluster, [1, 2, 3], 5 * Second));
        var fault = await Assert.ThrowsAsync<RelayFaultException>(() => caller.RequestAsync(cluster, [0], 5 * Second));
        Assert.Equal("fault text, exactly", fault.Message);
        var big = new byte[8 * 1024 * 1024];
        Random.Shared.NextBytes(big);

        // A first byte of 0 asks the member for the fault (one random request in 256 did).
        big[0] = 1;
        Assert.Equal(big.Reverse().ToArray(), await caller.RequestAsync(cluster, big, 30 * Second));
    }

    [Fact]
    public async Task A_request_that_outlives_its_timeout_answers_timed_out_and_its_late_reply_is_dropped()
    {
        var cluster = Unique("late");
        var release = new TaskCompletionSource();
        await using var member = await RelayTestClient.ConnectAsync(fixture.RelayA, cluster, new RelayMemberHandler
        {
            Request = async r =>
            {
                if (r[0] == 1)
                {
                    await release.Task;
                }

                return r;
            },
        });
        await using var caller = await RelayTestClient.ConnectAsync(fixture.RelayA);
        await Assert.ThrowsAsync<RelayTimeoutException>(() => caller.RequestAsync(cluster, [1], TimeSpan.FromMilliseconds(300)));
        release.SetResult();

        // The late reply is dropped at the relay; the connection and the member go on.
        Assert.Equal(new byte[] { 2 }, await caller.RequestAsync(cluster, [2], 5 * Second));
        Assert.False(member.Closed.IsCompleted);
    }

    [Fact]
    public async Task Requests_past_the_connections_byte_limit_are_refused_at_once_while_the_connection_goes_on_reading()
    {
        var cluster = Unique("held");
        var release = new TaskCompletionSource();
        var holding = new RelayMemberHandler
        {
            Request = async r =>
            {
                await release.Task;
                return [1];
            },
        };

        // Two members, each taking one request at a time as large as its share of the relay's queue (16 MiB).
        await using var first = await RelayTestClient.ConnectAsync(fixture.RelayA, cluster, holding);
        await using var second = await RelayTestClient.ConnectAsync(fixture.RelayB, cluster, holding);
        await using var caller = await RelayTestClient.ConnectAsync(fixture.RelayB);

        // The fixture's relays hold 32 MiB of a connection's requests in flight: two of 15 MiB, and a third does not fit.
        var big = new byte[15 * 1024 * 1024];
        var held = Enumerable.Range(0, 2).Select(_ => caller.RequestAsync(cluster, big, 60 * Second)).ToArray();
        await Task.Delay(1000);
        var refused = await Assert.ThrowsAsync<RelayFaultException>(() => caller.RequestAsync(cluster, big, 60 * Second).WaitAsync(10 * Second));
        Assert.Contains("this connection already has", refused.Message);

        // The held ones still complete: their replies were read past the refusal.
        release.SetResult();
        foreach (var request in held)
        {
            Assert.Equal(new byte[] { 1 }, await request.WaitAsync(60 * Second));
        }
    }

    [Fact]
    public async Task Client_side_limits_drop_requests_over_memory_and_never_run_expired_ones()
    {
        var cluster = Unique("limits");
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        gate.SetResult();
        await using var member = await RelayTestClient.ConnectAsync(fixture.RelayA, cluster, new RelayMemberHandler
        {
            RequestThreads = 1,
            RequestMemory = 1,
            Request = async r =>
            {
                await Volatile.Read(ref gate).Task;
                return r;
            },
        });
        await using var caller = await RelayTestClient.ConnectAsync(fixture.RelayA);
        Assert.Equal(new byte[] { 7 }, await caller.RequestAsync(cluster, [7], 5 * Second));
        await Assert.ThrowsAsync<RelayTimeoutException>(() => caller.RequestAsync(cluster, [7, 7], TimeSpan.FromMilliseconds(300)));

        // With the member's one thread held, three requests of 50 ms time out at their caller and expire in the
        // member's queue; once the thread is free, they are dropped unrun.
        Volatile.Write(ref gate, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        var before = member.Executed;
        var first = caller.RequestAsync(cluster, [1], 60 * Second);
        await Eventually.HoldsAsync(() => member.Executed == before + 1, "the first request running");
        foreach (var late in Enumerable.Range(0, 3).Select(_ => caller.RequestAsync(cluster, [2], TimeSpan.FromMilliseconds(50))).ToArray())
        {
            await Assert.ThrowsAsync<RelayTimeoutException>(() => late.WaitAsync(30 * Second));
        }

        // A copy still on its way to the member once its caller timed out has little time left when it arrives.
        await Task.Delay(500);
        await Eventually.HoldsAsync(() => member.TakenIn.Where(r => r.Request[0] == 2).All(r => DateTime.UtcNow > r.Expires), "the queued requests expired");
        Volatile.Read(ref gate).SetResult();
        Assert.Equal(new byte[] { 1 }, await first.WaitAsync(30 * Second));
        await Eventually.HoldsAsync(() => member.Queued == 0, "the queued requests taken off the queue");
        Assert.Equal(before + 1, member.Executed);
    }

    [Fact]
    public async Task A_broadcast_reaches_every_member_once_and_a_publication_every_subscriber()
    {
        var cluster = Unique("broadcast");
        var handlers = Enumerable.Range(0, 3).Select(_ => new RelayMemberHandler()).ToArray();
        var members = new List<RelayTestClient>();
        for (var i = 0; i < handlers.Length; i++)
        {
            members.Add(await RelayTestClient.ConnectAsync(i % 2 == 0 ? fixture.RelayA : fixture.RelayB, cluster, handlers[i]));
        }

        await using var sender = await RelayTestClient.ConnectAsync(fixture.RelayA);
        for (var i = 0; i < 50; i++)
        {
            await sender.BroadcastAsync(cluster, [(byte)i]);
        }

        foreach (var handler in handlers)
        {
            var got = new List<byte>();
            while (got.Count < 50)
            {
                got.Add((await handler.Broadcasts.Reader.ReadAsync().AsTask().WaitAsync(10 * Second))[0]);
            }

            Assert.Equal(Enumerable.Range(0, 50).Select(i => (byte)i).Order(), got.Order());
        }

        var topic = Unique("topic");
        var events = new List<System.Threading.Channels.Channel<byte[]>>();
        var subscribers = new List<RelayTestClient>();
        foreach (var relay in new[] { fixture.RelayA, fixture.RelayB, fixture.RelayA })
        {
            var channel = System.Threading.Channels.Channel.CreateUnbounded<byte[]>();
            var subscriber = await RelayTestClient.ConnectAsync(relay);
            await subscriber.SubscribeAsync(topic, e => channel.Writer.WriteAsync(e).AsTask());
            events.Add(channel);
            subscribers.Add(subscriber);
        }

        await Eventually.HoldsAsync(
            async () =>
            {
                await sender.PublishAsync(topic, [42]);
                await Task.Delay(200);
                return events.All(e => e.Reader.TryPeek(out _));
            },
            "every subscriber gets a publication",
            TimeSpan.FromSeconds(20));
        await subscribers[0].UnsubscribeAsync(topic);
        foreach (var client in members.Concat(subscribers))
        {
            await client.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_client_that_subscribes_and_publishes_at_once_gets_its_publication_and_none_after_unsubscribing()
    {
        // The relay keeps the client's order: the subscription is in place for the publication right behind it, and the
        // unsubscription has finished before the publication behind it goes.
        var topic = Unique("own-topic");
        var received = System.Threading.Channels.Channel.CreateUnbounded<byte[]>();
        await using var client = await RelayTestClient.ConnectAsync(fixture.RelayA);
        await client.SubscribeAsync(topic, e => received.Writer.WriteAsync(e).AsTask());
        await client.PublishAsync(topic, [1]);
        Assert.Equal(new byte[] { 1 }, await received.Reader.ReadAsync().AsTask().WaitAsync(10 * Second));

        await client.UnsubscribeAsync(topic);
        await client.PublishAsync(topic, [2]);
        await client.SubscribeAsync(topic, e => received.Writer.WriteAsync(e).AsTask());
        await client.PublishAsync(topic, [3]);
        Assert.Equal(new byte[] { 3 }, await received.Reader.ReadAsync().AsTask().WaitAsync(10 * Second));
    }

    [Fact]
    public async Task Members_registered_at_once_each_get_every_broadcast_that_many_senders_send_at_once()
    {
        // The Go library's own broadcast test: 25 members and 25 plain clients, registered and connected at once,
        // every one of them broadcasting 25 messages, the clients closing as soon as they have.
        const int Members = 25, Clients = 25, Messages = 25;
        var cluster = Unique("many");
        var handlers = Enumerable.Range(0, Members).Select(_ => new RelayMemberHandler()).ToArray();
        var members = await Task.WhenAll(handlers.Select(h => RelayTestClient.ConnectAsync(fixture.RelayA, cluster, h)));
        var clients = await Task.WhenAll(Enumerable.Range(0, Clients).Select(_ => RelayTestClient.ConnectAsync(fixture.RelayA)));
        await Task.WhenAll(members.Concat(clients).Select(async (sender, s) =>
        {
            for (var i = 0; i < Messages; i++)
            {
                await sender.BroadcastAsync(cluster, Encoding.UTF8.GetBytes($"{s}/{i}"));
            }
        }));

        // The plain clients close as soon as they have sent, as the Go test's do: what they sent still goes.
        await Task.WhenAll(clients.Select(c => c.CloseAsync()));

        var expected = Enumerable.Range(0, Members + Clients).SelectMany(s => Enumerable.Range(0, Messages).Select(i => $"{s}/{i}")).Order().ToArray();
        for (var m = 0; m < Members; m++)
        {
            var got = new List<string>();
            try
            {
                while (got.Count < expected.Length)
                {
                    got.Add(Encoding.UTF8.GetString(await handlers[m].Broadcasts.Reader.ReadAsync().AsTask().WaitAsync(10 * Second)));
                }
            }
            catch (TimeoutException)
            {
                var missing = expected.Except(got).ToArray();
                Assert.Fail($"member {m} got {got.Count} of {expected.Length}; missing {missing.Length}, such as {string.Join(", ", missing.Take(10))}");
            }

            Assert.Equal(expected, got.Order().ToArray());
        }

        foreach (var client in members.Concat(clients))
        {
            await client.DisposeAsync();
        }
    }

    [Fact]
    public async Task Orleans_callers_reach_relay_members_and_relay_callers_reach_silo_members_and_subscribers()
    {
        var cluster = Unique("mixed");
        await using var member = await RelayTestClient.ConnectAsync(fixture.RelayA, cluster, new RelayMemberHandler { Request = r => Task.FromResult(Encoding.UTF8.GetBytes("from relay")) });
        Assert.Equal("from relay", Encoding.UTF8.GetString(await fixture.IrisB.RequestAsync(cluster, [1], 5 * Second)));
        Assert.Equal("from relay", Encoding.UTF8.GetString(await fixture.GrainsB.GetGrain<IClusterGrain>(cluster).Request([1], 5 * Second)));

        var siloCluster = Unique("silo-member");
        await using var registration = await fixture.IrisB.RegisterAsync(siloCluster, new EchoHandler());
        await using var caller = await RelayTestClient.ConnectAsync(fixture.RelayA);
        Assert.Equal(new byte[] { 9 }, await caller.RequestAsync(siloCluster, [9], 5 * Second));

        var topic = Unique("mixed-topic");
        var received = new TaskCompletionSource<byte[]>();
        await caller.SubscribeAsync(topic, e =>
        {
            received.TrySetResult(e);
            return Task.CompletedTask;
        });
        await Eventually.HoldsAsync(
            async () =>
            {
                await fixture.GrainsB.GetGrain<ITopicGrain>(topic).Publish([5]);
                return await Task.WhenAny(received.Task, Task.Delay(200)) == received.Task;
            },
            "an Orleans publication reaches the relay subscriber",
            TimeSpan.FromSeconds(20));
    }

    [Fact]
    public async Task Tunnels_keep_order_carry_16_MiB_and_stay_usable_after_a_stalled_64_MiB_send_times_out()
    {
        var cluster = Unique("tunnel");
        await using var member = await RelayTestClient.ConnectAsync(fixture.RelayA, cluster, new RelayMemberHandler { Tunnel = EchoAsync });
        await using var caller = await RelayTestClient.ConnectAsync(fixture.RelayB);
        var tunnel = await caller.TunnelAsync(cluster, 5 * Second);
        Assert.NotNull(tunnel);
        for (var i = 0; i < 100; i++)
        {
            Assert.True(await tunnel.SendAsync([(byte)i], 5 * Second));
        }

        for (var i = 0; i < 100; i++)
        {
            Assert.Equal(new[] { (byte)i }, await tunnel.ReceiveAsync(10 * Second));
        }

        var blob = new byte[16 * 1024 * 1024];
        Random.Shared.NextBytes(blob);
        Assert.True(await tunnel.SendAsync(blob, 30 * Second, waitForEveryChunk: true));
        Assert.Equal(blob, await tunnel.ReceiveAsync(30 * Second));

        // Sends that wait for allowance on every chunk, given up after 10 ms, part-way through 64 MiB.
        var huge = new byte[64 * 1024 * 1024];
        var abandoned = 0;
        for (var i = 0; i < 5; i++)
        {
            abandoned += await tunnel.SendAsync(huge, TimeSpan.FromMilliseconds(10), waitForEveryChunk: true) ? 0 : 1;
        }

        Assert.True(abandoned > 0, "no 64 MiB send stalled");
        for (var i = 0; i < 10; i++)
        {
            Assert.True(await tunnel.SendAsync([0, 1, 2, (byte)i], 5 * Second));
            var back = await tunnel.ReceiveAsync(30 * Second);
            while (back!.Length != 4)
            {
                // A 64 MiB send that went through whole comes back whole; the small ones follow it.
                back = await tunnel.ReceiveAsync(30 * Second);
            }

            Assert.Equal(new byte[] { 0, 1, 2, (byte)i }, back);
        }

        await tunnel.CloseAsync();
        Assert.Null(await tunnel.ReceiveAsync(10 * Second));
        Assert.Equal(string.Empty, tunnel.CloseReason);
    }

    [Fact]
    public async Task A_tunnel_to_a_cluster_without_members_times_out_at_once_and_one_from_Orleans_reaches_a_relay_member()
    {
        await using var caller = await RelayTestClient.ConnectAsync(fixture.RelayA);
        var started = DateTime.UtcNow;
        Assert.Null(await caller.TunnelAsync(Unique("nobody"), 300 * Second));
        Assert.True(DateTime.UtcNow - started < 60 * Second);

        var cluster = Unique("orleans-tunnel");
        await using var member = await RelayTestClient.ConnectAsync(fixture.RelayA, cluster, new RelayMemberHandler { Tunnel = EchoAsync });
        await using var tunnel = await fixture.IrisB.OpenTunnelAsync(cluster, 5 * Second);
        var big = new byte[3 * 1024 * 1024];
        Random.Shared.NextBytes(big);
        await tunnel.SendAsync(new byte[] { 1, 2 });
        await tunnel.SendAsync(big);
        Assert.Equal(new byte[] { 1, 2 }, await tunnel.ReceiveAsync());
        Assert.Equal(big, await tunnel.ReceiveAsync());
    }

    [Fact]
    public async Task A_member_that_stops_reading_is_disconnected_with_a_reason_and_others_go_on()
    {
        var cluster = Unique("deaf");
        var init = new RelayTestClient.FieldWriter();
        init.Byte(0x00);
        init.String("iris-client-magic");
        init.String(RelayTestClient.Version);
        init.String(cluster);
        using var deaf = new System.Net.Sockets.Socket(fixture.RelayA.AddressFamily, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        deaf.ReceiveBufferSize = 64 * 1024;
        await deaf.ConnectAsync(fixture.RelayA);
        await deaf.SendAsync(init.Buffer.WrittenMemory);

        var echo = Unique("bystander");
        await using var bystanderMember = await RelayTestClient.ConnectAsync(fixture.RelayA, echo, new RelayMemberHandler());
        await using var sender = await RelayTestClient.ConnectAsync(fixture.RelayB);
        await Eventually.HoldsAsync(
            async () =>
            {
                try
                {
                    await sender.RequestAsync(cluster, [0], Second);
                }
                catch (RelayTimeoutException)
                {
                    // Registered: the request reached the member, which does not read.
                    return true;
                }
                catch (RelayFaultException)
                {
                }

                return false;
            },
            "the member that does not read is registered",
            TimeSpan.FromSeconds(20));

        // Broadcasts pile up for it: past the connection's queue limit it is disconnected and leaves its cluster.
        var megabyte = new byte[1024 * 1024];
        await Eventually.HoldsAsync(
            async () =>
            {
                for (var i = 0; i < 8; i++)
                {
                    await sender.BroadcastAsync(cluster, megabyte);
                }

                Assert.Equal(new byte[] { 1 }, await sender.RequestAsync(echo, [1], 5 * Second));
                try
                {
                    await sender.RequestAsync(cluster, [0], TimeSpan.FromMilliseconds(200));
                }
                catch (RelayFaultException e) when (e.Message.Contains(cluster, StringComparison.Ordinal))
                {
                    return true;
                }
                catch (RelayTimeoutException)
                {
                }

                return false;
            },
            "the member that does not read is gone from its cluster",
            TimeSpan.FromSeconds(60));

        // What it finally reads ends with the Close that says why.
        var received = new MemoryStream();
        var buffer = new byte[256 * 1024];
        using var drain = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            while (await deaf.ReceiveAsync(buffer, drain.Token) is var n and > 0)
            {
                received.Write(buffer, 0, n);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or System.Net.Sockets.SocketException)
        {
        }

        Assert.Contains("did not read its connection", Encoding.UTF8.GetString(received.GetBuffer().AsSpan(Math.Max(0, (int)received.Length - 4096), (int)Math.Min(4096, received.Length))));
    }

    [Fact]
    public async Task A_relay_member_whose_connection_is_lost_fails_its_tunnels_for_the_opener_rather_than_closing_them_gracefully()
    {
        var cluster = Unique("lost-tunnel");
        var member = await RelayTestClient.ConnectAsync(fixture.RelayA, cluster, new RelayMemberHandler { Tunnel = EchoAsync });
        await using var tunnel = await fixture.IrisB.OpenTunnelAsync(cluster, 5 * Second);
        await tunnel.SendAsync(new byte[] { 1 });
        Assert.Equal(new byte[] { 1 }, await tunnel.ReceiveAsync());

        // The member's process is gone without a Close.
        await member.DisposeAsync();
        var closed = await Assert.ThrowsAsync<TunnelClosedException>(async () => await tunnel.ReceiveAsync().AsTask().WaitAsync(30 * Second));
        // The member leaves first, which ends its tunnels: the opener hears that, not that everything arrived.
        Assert.Contains(closed.Reason, new[] { TunnelCloseReason.MemberUnregistered, TunnelCloseReason.PeerDied });
    }

    [Fact]
    public async Task Malformed_input_before_the_handshake_is_denied_with_a_reason()
    {
        var (notInit, answer) = await RelayTestClient.SendRawAsync(fixture.RelayA, [0x42], 10 * Second);
        notInit.Dispose();
        Assert.Equal(0x01, answer[0]);
        Assert.Contains("must be Init", Encoding.UTF8.GetString(answer));

        // A magic declared far longer than any name: refused before anything is allocated or waited for.
        var (tooLong, refusal) = await RelayTestClient.SendRawAsync(fixture.RelayA, [0x00, 0xff, 0xff, 0xff, 0xff, 0x0f], 10 * Second);
        tooLong.Dispose();
        Assert.Equal(0x01, refusal[0]);
        Assert.Contains("magic of", Encoding.UTF8.GetString(refusal));
    }

    [Fact]
    public async Task A_client_that_breaks_the_protocol_is_closed_with_a_reason_and_others_go_on()
    {
        var cluster = Unique("violation");
        await using var member = await RelayTestClient.ConnectAsync(fixture.RelayA, cluster, new RelayMemberHandler());
        await using var bystander = await RelayTestClient.ConnectAsync(fixture.RelayA);

        await using var badOpcode = await RelayTestClient.ConnectAsync(fixture.RelayA);
        await badOpcode.SendAsync(w => w.Byte(0x42));
        Assert.Contains("unknown opcode 0x42", await badOpcode.Closed.WaitAsync(10 * Second));

        await using var badBool = await RelayTestClient.ConnectAsync(fixture.RelayA, Unique("bad-bool"));
        await badBool.SendAsync(w => { w.Byte(0x05); w.Varint(1); w.Byte(7); });
        Assert.Contains("boolean", await badBool.Closed.WaitAsync(10 * Second));

        await using var tooLong = await RelayTestClient.ConnectAsync(fixture.RelayA);
        await tooLong.SendAsync(w => { w.Byte(0x03); w.String(cluster); w.Varint(1UL << 40); });
        Assert.Contains("over the", await tooLong.Closed.WaitAsync(10 * Second));

        Assert.Equal(new byte[] { 3 }, await bystander.RequestAsync(cluster, [3], 5 * Second));
    }

    private static async Task EchoAsync(RelayTestClient.ClientTunnel tunnel)
    {
        while (await tunnel.ReceiveAsync(TimeSpan.FromMinutes(1)) is { } message)
        {
            await tunnel.SendAsync(message, TimeSpan.FromMinutes(1));
        }
    }

    private static async Task Catch(Task task)
    {
        try
        {
            await task;
        }
        catch (Exception)
        {
        }
    }

    private sealed class EchoHandler : IClusterHandler
    {
        public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken) => Task.FromResult(request);

        public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
