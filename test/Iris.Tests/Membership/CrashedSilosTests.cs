using System.Net;
using System.Net.Sockets;
using Iris.Membership;
using Iris.Overlay.Transport;

namespace Iris.Tests.Membership;

public sealed class CrashedSilosTests
{
    [Fact]
    public async Task A_port_nothing_listens_on_refuses_and_a_listening_one_does_not()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var listening = (IPEndPoint)listener.LocalEndpoint;
        Assert.False(await CrashedSilos.RefusesAsync(listening));

        listener.Stop();
        Assert.True(await CrashedSilos.RefusesAsync(listening));
    }

    [Fact]
    public void The_host_of_a_tcp_node_address_is_its_ip_and_other_addresses_have_none()
    {
        Assert.Equal(IPAddress.Loopback, CrashedSilos.HostOf(new NodeAddress("tcp://127.0.0.1:41581")));
        Assert.Equal(IPAddress.IPv6Loopback, CrashedSilos.HostOf(new NodeAddress("tcp://[::1]:41581")));
        Assert.Null(CrashedSilos.HostOf(new NodeAddress("mem://42")));
        Assert.Null(CrashedSilos.HostOf(new NodeAddress("tcp://not-an-address")));
    }
}
