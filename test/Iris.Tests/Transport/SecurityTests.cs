using System.Net;
using System.Net.Sockets;
using Iris.Overlay;
using Iris.Overlay.Discovery;
using Iris.Overlay.Pastry;
using Iris.Overlay.Security;
using Iris.Overlay.Timing;
using Iris.Overlay.Transport;
using Iris.Security;
using Iris.Tests.Support;
using Iris.Tests.TestClusters;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;
using Orleans.Runtime;

namespace Iris.Tests.Transport;

/// <summary>Whoever lacks the network key gets nowhere, whichever door it tries; and the key itself never shows.</summary>
public sealed class SecurityTests
{
    /// <summary>Both ends of a real loopback connection.</summary>
    private static async Task<(NetworkStream Client, NetworkStream Server, Both Sockets)> ConnectedPairAsync()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var client = new TcpClient();
        await client.ConnectAsync((IPEndPoint)listener.LocalEndpoint);
        var server = await listener.AcceptTcpClientAsync();
        listener.Stop();
        return (client.GetStream(), server.GetStream(), new Both(client, server));
    }

    private sealed class Both(TcpClient a, TcpClient b) : IDisposable
    {
        public void CloseClient() => a.Dispose();

        public void Dispose()
        {
            a.Dispose();
            b.Dispose();
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task An_overlay_handshake_and_an_orleans_handshake_do_not_complete_each_other(bool overlayDials)
    {
        var (initiator, responder) = overlayDials ? (SecureChannelKind.Overlay, SecureChannelKind.Orleans) : (SecureChannelKind.Orleans, SecureChannelKind.Overlay);
        var key = NetworkKey.Generate();
        var (client, server, sockets) = await ConnectedPairAsync();
        using (sockets)
        {
            var timeout = TimeSpan.FromSeconds(5);
            var dialling = Handshake.RunAsync(client, initiator: true, key, timeout, 1L << 32, CancellationToken.None, initiator);
            var answering = Handshake.RunAsync(server, initiator: false, key, timeout, 1L << 32, CancellationToken.None, responder);
            var refused = await Assert.ThrowsAsync<OverlayAuthenticationException>(() => dialling);
            Assert.Contains("another kind of connection", refused.Message);
            sockets.CloseClient();
            await Assert.ThrowsAsync<OverlayAuthenticationException>(() => answering);
        }

        // The same channel on both sides completes, with the same connection id at both ends.
        var (c2, s2, sockets2) = await ConnectedPairAsync();
        using (sockets2)
        {
            var a = Handshake.RunAsync(c2, initiator: true, key, TimeSpan.FromSeconds(5), 1L << 32, CancellationToken.None, initiator);
            var b = Handshake.RunAsync(s2, initiator: false, key, TimeSpan.FromSeconds(5), 1L << 32, CancellationToken.None, initiator);
            var (ra, rb) = (await a, await b);
            Assert.Equal(ra.ConnectionId, rb.ConnectionId);
        }
    }

    [Fact]
    public async Task An_orleans_client_reaches_a_gateway_only_through_the_iris_connection_middleware_with_the_right_key()
    {
        await using var cluster = await IrisTestCluster.DeployAsync(1, tcp: true);
        var gateway = cluster.Silos[0].Services().GetRequiredService<ILocalSiloDetails>().GatewayAddress!.Endpoint;
        var clusterOptions = cluster.Silos[0].Services().GetRequiredService<Microsoft.Extensions.Options.IOptions<ClusterOptions>>().Value;
        var rightKey = cluster.Silos[0].Services().GetRequiredService<NetworkKeyProvider>().Key;

        async Task<Exception?> ConnectAsync(NetworkKey? key)
        {
            using var host = Host.CreateDefaultBuilder().UseOrleansClient(client =>
            {
                client.UseStaticClustering(gateway);
                client.Configure<ClusterOptions>(o => (o.ClusterId, o.ServiceId) = (clusterOptions.ClusterId, clusterOptions.ServiceId));
                client.UseConnectionRetryFilter((_, _) => Task.FromResult(false));
                if (key is not null)
                {
                    client.Services.AddSingleton(new NetworkKeyProvider(() => key));
                    client.Configure<ClientConnectionOptions>(c => c.ConfigureConnection(connection => connection.UseIrisSecurity(initiator: true)));
                }
            }).Build();
            try
            {
                await host.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
                await host.Services.GetRequiredService<IClusterClient>().GetGrain<IManagementGrain>(0).GetHosts().WaitAsync(TimeSpan.FromSeconds(30));
                await host.StopAsync();
                return null;
            }
            catch (Exception e) when (e is not TimeoutException)
            {
                return e;
            }
        }

        Assert.Null(await ConnectAsync(rightKey));
        Assert.NotNull(await ConnectAsync(null));
        Assert.NotNull(await ConnectAsync(NetworkKey.Generate()));
    }

    [Fact]
    public async Task The_network_key_never_appears_in_logs_or_error_messages()
    {
        var key = NetworkKey.Generate();
        var log = new ListLogger();
        var messages = new List<string>();
        using var timers = new TimerQueue(TimeProvider.System, log);
        var options = new TcpTransportOptions { HandshakeTimeout = TimeSpan.FromMilliseconds(500), ReconnectMaxDelay = TimeSpan.FromMilliseconds(200) };
        await using var a = TcpTransport.Start(new IPEndPoint(IPAddress.Loopback, 0), key, options, log);
        await using var b = TcpTransport.Start(new IPEndPoint(IPAddress.Loopback, 0), key, options, log);
        await using var intruder = TcpTransport.Start(new IPEndPoint(IPAddress.Loopback, 0), NetworkKey.Generate(), options, log);
        using var first = new PastryNode(NodeKey.FromName("a"), a, timers, TcpRingTests.FastPastry, new Random(1), log);
        using var second = new PastryNode(NodeKey.FromName("b"), b, timers, TcpRingTests.FastPastry, new Random(2), log);
        first.Start();
        second.Join(first.Self.Address);
        Assert.True(await TcpRingTests.EventuallyAsync(() => second.IsReady, TimeSpan.FromSeconds(10)));

        // Every way in without the key, and every refusal it causes.
        intruder.Send(a.LocalAddress, new RouteAckMessage { Sender = new NodeHandle(NodeKey.Zero, intruder.LocalAddress), HopId = 1 });
        using (var silent = new TcpClient())
        {
            await silent.ConnectAsync(TcpLink.ParseEndPoint(a.LocalAddress));
            await silent.GetStream().WriteAsync(new byte[100]);
            await Task.Delay(700);
        }

        try
        {
            second.Route(NodeKey.FromName("x"), 1, new byte[a.MaxPayload + 1]);
        }
        catch (OverlayMessageTooLargeException e)
        {
            messages.Add(e.Message);
        }

        foreach (var bad in new[] { "not base64!", Convert.ToBase64String(new byte[31]) })
        {
            messages.Add(Assert.Throws<NetworkKeyException>(() => NetworkKey.Parse(bad)).Message);
        }

        var filter = new BeaconFilter(key, TimeSpan.FromSeconds(30), TimeProvider.System);
        filter.Check(Beacon.Create(first.Self, true, string.Empty, TimeProvider.System).Encode(NetworkKey.Generate()), out _);
        Assert.True(await TcpRingTests.EventuallyAsync(() => a.Refused >= 2, TimeSpan.FromSeconds(10)), $"refused {a.Refused}\n{log}");

        var everything = string.Join('\n', log.Lines.Concat(messages).Append(key.ToString()));
        foreach (var form in Forms(key))
        {
            Assert.DoesNotContain(form, everything, StringComparison.OrdinalIgnoreCase);
        }

        Assert.Contains(key.Fingerprint, everything);
    }

    /// <summary>Every way the key could be written out: base64, hexadecimal, and its bytes as Latin-1 text.</summary>
    private static IEnumerable<string> Forms(NetworkKey key)
    {
        var bytes = key.Bytes.ToArray();
        yield return Convert.ToBase64String(bytes);
        yield return Convert.ToBase64String(bytes)[..16];
        yield return Convert.ToHexString(bytes);
        yield return Convert.ToHexString(bytes)[..16];
        yield return BitConverter.ToString(bytes);
        yield return System.Text.Encoding.Latin1.GetString(bytes);
    }
}
