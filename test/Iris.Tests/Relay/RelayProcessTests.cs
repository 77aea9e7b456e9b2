using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Iris.Hosting;
using Iris.Overlay.Security;
using Iris.Tests.Support;

namespace Iris.Tests.Relay;

/// <summary>The relay endpoint of the real Iris.Silo program, in separate processes on loopback.</summary>
public class RelayProcessTests
{
    private static readonly TimeSpan StartLimit = TimeSpan.FromSeconds(60);

    private static ChildProcess StartSilo(IDictionary<string, string> network, int relayPort)
    {
        var variables = new Dictionary<string, string>(network)
        {
            ["DOTNET_ENVIRONMENT"] = "Development",
            ["Logging__Console__DisableColors"] = "true",
            ["Iris__Relay__Port"] = relayPort.ToString(CultureInfo.InvariantCulture),

            // Ports of their own: two silos that start at the same instant both find the default ports free.
            ["Iris__Silo__SiloPort"] = PortPicker.AnyFree().ToString(CultureInfo.InvariantCulture),
            ["Iris__Silo__GatewayPort"] = PortPicker.AnyFree().ToString(CultureInfo.InvariantCulture),
        };
        return ChildProcess.Start("dotnet", [RepositoryPaths.Program("src", "Iris.Silo")], variables);
    }

    private static Dictionary<string, string> Network() => new()
    {
        ["Iris__Network__Key"] = Convert.ToBase64String(NetworkKey.Generate().Bytes),
        ["Iris__Network__Discovery__Port"] = (40000 + (Random.Shared.Next(0, 1000) * 16)).ToString(CultureInfo.InvariantCulture),
    };

    [Fact]
    public async Task Relay_clients_of_two_silo_processes_request_tunnel_and_broadcast_and_a_stopping_silo_tells_its_clients_why()
    {
        var network = Network();
        var (portA, portB) = (PortPicker.AnyFree(), PortPicker.AnyFree());
        await using var siloA = StartSilo(network, portA);
        await using var siloB = StartSilo(network, portB);
        foreach (var (silo, port) in new[] { (siloA, portA), (siloB, portB) })
        {
            await silo.WaitForAsync(lines => lines.Any(l => l.Contains($"relay endpoint listening on 127.0.0.1:{port}", StringComparison.Ordinal)), StartLimit, "the relay endpoint's line");
        }

        var relayA = new IPEndPoint(IPAddress.Loopback, portA);
        var relayB = new IPEndPoint(IPAddress.Loopback, portB);
        var handler = new RelayMemberHandler
        {
            Request = r => Task.FromResult(Encoding.UTF8.GetBytes("A: " + Encoding.UTF8.GetString(r))),
            Tunnel = async tunnel =>
            {
                while (await tunnel.ReceiveAsync(TimeSpan.FromMinutes(1)) is { } message)
                {
                    await tunnel.SendAsync(message, TimeSpan.FromMinutes(1));
                }
            },
        };

        // Until the two silos have formed one network, the member on A is not yet known at B.
        await using var member = await RelayTestClient.ConnectAsync(relayA, "process-cluster", handler);
        await using var caller = await RelayTestClient.ConnectAsync(relayB);
        await WithSiloOutputAsync(siloA, siloB, () => Eventually.HoldsAsync(
            async () =>
            {
                try
                {
                    return Encoding.UTF8.GetString(await caller.RequestAsync("process-cluster", "hello"u8.ToArray(), TimeSpan.FromSeconds(5))) == "A: hello";
                }
                catch (Exception e) when (e is RelayFaultException or RelayTimeoutException)
                {
                    // No member known yet, or a call caught while the two silos' Orleans cluster settles.
                    return false;
                }
            },
            "a request from B's relay reaches the member on A's",
            TimeSpan.FromSeconds(60)));

        var tunnel = await caller.TunnelAsync("process-cluster", TimeSpan.FromSeconds(5));
        Assert.NotNull(tunnel);
        var blob = new byte[2 * 1024 * 1024];
        Random.Shared.NextBytes(blob);
        Assert.True(await tunnel.SendAsync(blob, TimeSpan.FromSeconds(30)));
        Assert.Equal(blob, await tunnel.ReceiveAsync(TimeSpan.FromSeconds(30)));

        await caller.BroadcastAsync("process-cluster", [7]);
        Assert.Equal(new byte[] { 7 }, await handler.Broadcasts.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));

        siloA.Interrupt();
        Assert.Equal("the Iris node is shutting down", await member.Closed.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Null(await tunnel.ReceiveAsync(TimeSpan.FromSeconds(30)));
        await siloA.WaitForExitAsync(TimeSpan.FromSeconds(30));
        Assert.True(siloA.ExitCode == 0, $"exit code {siloA.ExitCode}\n{siloA.Output}");
    }

    /// <summary>Runs <paramref name="check"/>; a failure carries the end of both silos' output.</summary>
    private static async Task WithSiloOutputAsync(ChildProcess a, ChildProcess b, Func<Task> check)
    {
        try
        {
            await check();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new Xunit.Sdk.XunitException($"{e.Message}\n--- silo A:\n{string.Join('\n', a.Lines.TakeLast(40))}\n--- silo B:\n{string.Join('\n', b.Lines.TakeLast(40))}");
        }
    }

    [Fact]
    public async Task A_silo_whose_relay_port_is_taken_refuses_to_start_and_names_the_setting()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        await using var silo = StartSilo(Network(), port);
        await silo.WaitForExitAsync(StartLimit);
        Assert.Equal(1, silo.ExitCode);
        Assert.Contains(silo.Lines, l => l.Contains($"127.0.0.1:{port}", StringComparison.Ordinal) && l.Contains("Iris:Relay:Port", StringComparison.Ordinal));
    }
}
