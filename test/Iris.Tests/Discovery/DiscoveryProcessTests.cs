using Iris.Overlay.Security;
using Iris.Tests.Support;

namespace Iris.Tests.Discovery;

/// <summary>Overlay nodes in separate processes finding each other with no configuration.</summary>
public sealed class DiscoveryProcessTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(20);

    /// <summary>A loopback port range of its own for each test, so tests running side by side do not hear each
    /// other (they would ignore each other's beacons anyway: every test has its own network key).</summary>
    private static int PortBase() => 20000 + (Random.Shared.Next(0, 1000) * 16);

    private static ChildProcess Host(string key, int port, params string[] extra) =>
        ChildProcess.Start("dotnet", [RepositoryPaths.Program("test", "Iris.Overlay.TestHost"), "--key", key, "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), .. extra]);

    private static string NodeKeyOf(ChildProcess host) =>
        host.Lines.First(l => l.StartsWith("NODE ", StringComparison.Ordinal)).Split(' ')[1];

    private static Task WaitForNodeAsync(ChildProcess host) =>
        host.WaitForAsync(lines => lines.Any(l => l.StartsWith("NODE ", StringComparison.Ordinal)), Limit, "NODE line");

    private static Task WaitForNeighbourAsync(ChildProcess host, ChildProcess other) =>
        host.WaitForAsync(lines => lines.Contains($"NEIGHBOUR+ {NodeKeyOf(other)}"), Limit, $"{NodeKeyOf(other)} as a neighbour");

    [Fact]
    public async Task Two_processes_on_one_machine_find_each_other_over_loopback_with_no_configuration()
    {
        var key = Convert.ToBase64String(NetworkKey.Generate().Bytes);
        var port = PortBase();
        await using var first = Host(key, port);
        await using var second = Host(key, port);
        await WaitForNodeAsync(first);
        await WaitForNodeAsync(second);
        await WaitForNeighbourAsync(first, second);
        await WaitForNeighbourAsync(second, first);
    }

    [Fact]
    public async Task Networks_with_different_keys_on_the_same_ports_ignore_each_other_and_never_merge()
    {
        var red = Convert.ToBase64String(NetworkKey.Generate().Bytes);
        var blue = Convert.ToBase64String(NetworkKey.Generate().Bytes);
        var port = PortBase();
        await using var red1 = Host(red, port);
        await using var blue1 = Host(blue, port);
        await using var red2 = Host(red, port);
        await using var blue2 = Host(blue, port);
        ChildProcess[] all = [red1, blue1, red2, blue2];
        foreach (var host in all)
        {
            await WaitForNodeAsync(host);
        }

        await WaitForNeighbourAsync(red1, red2);
        await WaitForNeighbourAsync(blue1, blue2);
        await Task.Delay(TimeSpan.FromSeconds(3));
        foreach (var (host, strangers) in new[] { (red1, new[] { blue1, blue2 }), (red2, [blue1, blue2]), (blue1, [red1, red2]), (blue2, [red1, red2]) })
        {
            foreach (var stranger in strangers)
            {
                Assert.DoesNotContain($"NEIGHBOUR+ {NodeKeyOf(stranger)}", host.Lines);
            }

            // Each heard the other network's beacons and counted them as foreign.
            await host.WaitForAsync(lines => lines.Any(l => l.StartsWith("FOREIGN ", StringComparison.Ordinal) && l != "FOREIGN 0"), Limit, "foreign beacons counted");
        }
    }

    [Fact]
    public async Task Configured_seeds_replace_discovery()
    {
        var key = Convert.ToBase64String(NetworkKey.Generate().Bytes);
        await using var first = Host(key, PortBase(), "--scope", "none");
        await WaitForNodeAsync(first);
        var address = first.Lines.First(l => l.StartsWith("NODE ", StringComparison.Ordinal)).Split(' ')[2];

        // A different discovery port: only the seed can bring the second node to the first.
        await using var second = Host(key, PortBase(), "--scope", "none", "--seed", address);
        await WaitForNodeAsync(second);
        await WaitForNeighbourAsync(first, second);
        await WaitForNeighbourAsync(second, first);
    }

    [SkippableFact]
    public async Task Two_nodes_in_separate_network_namespaces_find_each_other_on_the_lan_by_broadcast()
    {
        var id = Random.Shared.Next(1000, 9999);
        var (ns1, ns2, veth1, veth2) = ($"iris{id}a", $"iris{id}b", $"irv{id}a", $"irv{id}b");
        var subnet = $"10.{200 + (id % 50)}.{id % 250}";
        var setup = new[]
        {
            $"netns add {ns1}", $"netns add {ns2}",
            $"link add {veth1} type veth peer name {veth2}",
            $"link set {veth1} netns {ns1}", $"link set {veth2} netns {ns2}",
            $"-n {ns1} addr add {subnet}.1/24 dev {veth1}", $"-n {ns2} addr add {subnet}.2/24 dev {veth2}",
            $"-n {ns1} link set {veth1} up", $"-n {ns2} link set {veth2} up",
            $"-n {ns1} link set lo up", $"-n {ns2} link set lo up",
        };
        try
        {
            foreach (var command in setup)
            {
                var (ok, error) = await IpCommand.RunAsync(command);
                Skip.IfNot(ok, $"Network namespaces cannot be created here (`ip {command}` failed: {error}); LAN discovery is tested only where they can.");
            }

            var key = Convert.ToBase64String(NetworkKey.Generate().Bytes);
            var dll = RepositoryPaths.Program("test", "Iris.Overlay.TestHost");
            await using var first = ChildProcess.Start("ip", ["netns", "exec", ns1, "dotnet", dll, "--key", key, "--scope", "lan", "--interface", veth1, "--listen", $"{subnet}.1"]);
            await using var second = ChildProcess.Start("ip", ["netns", "exec", ns2, "dotnet", dll, "--key", key, "--scope", "lan", "--interface", veth2, "--listen", $"{subnet}.2"]);
            await WaitForNodeAsync(first);
            await WaitForNodeAsync(second);
            Assert.Contains($"tcp://{subnet}.1:", first.Lines.First(l => l.StartsWith("NODE ", StringComparison.Ordinal)));
            await WaitForNeighbourAsync(first, second);
            await WaitForNeighbourAsync(second, first);
        }
        finally
        {
            await IpCommand.RunAsync($"netns del {ns1}");
            await IpCommand.RunAsync($"netns del {ns2}");
        }
    }
}
