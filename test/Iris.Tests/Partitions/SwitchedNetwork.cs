using System.Globalization;
using Iris.Tests.Support;

namespace Iris.Tests.Partitions;

/// <summary>
/// Network namespaces of a test's own, each with one interface (<c>eth0</c>, an address on a private /24) cabled to a
/// switch: a further namespace holding two bridges. Every cable starts on the first bridge; <see cref="SplitAsync"/>
/// moves some onto the second, so the two groups reach only their own, and <see cref="HealAsync"/> moves them back.
/// Nothing is created in the machine's own namespace (each veth pair is made with its ends already in place), so no
/// traffic of the test can leave its namespaces. Disposing kills what runs in them and deletes them, interfaces and
/// all. Namespaces left by a test process that no longer runs are deleted first.
/// </summary>
internal sealed class SwitchedNetwork : IAsyncDisposable
{
    private const string Prefix = "irisp-";
    private readonly string _name;
    private readonly int _subnet;
    private readonly HashSet<int> _apart = [];

    private SwitchedNetwork(string name, int hosts, int subnet)
    {
        _name = name;
        Hosts = hosts;
        _subnet = subnet;
    }

    public int Hosts { get; }

    /// <summary>The interface of every host namespace.</summary>
    public static string Interface => "eth0";

    private string Switch => $"{_name}-sw";

    public string Namespace(int host) => $"{_name}-{host}";

    public string Address(int host) => $"10.213.{_subnet}.{host + 1}";

    /// <summary>Builds the namespaces and the switch; null and the reason when this machine does not allow it (not
    /// root, no iproute2, no bridge or veth support).</summary>
    public static async Task<(SwitchedNetwork? Network, string Reason)> TryCreateAsync(int hosts)
    {
        await RemoveLeftoversAsync();
        var network = new SwitchedNetwork($"{Prefix}{Environment.ProcessId}-{Random.Shared.Next(1000, 9999)}", hosts, Random.Shared.Next(1, 250));
        var commands = new List<string>
        {
            $"netns add {network.Switch}",
            $"-n {network.Switch} link add br0 type bridge",
            $"-n {network.Switch} link add br1 type bridge",
            $"-n {network.Switch} link set br0 up",
            $"-n {network.Switch} link set br1 up",
        };
        for (var i = 0; i < hosts; i++)
        {
            var ns = network.Namespace(i);
            commands.AddRange(
            [
                $"netns add {ns}",
                $"link add name {Interface} netns {ns} type veth peer name p{i} netns {network.Switch}",
                $"-n {ns} addr add {network.Address(i)}/24 dev {Interface}",
                $"-n {ns} link set lo up",
                $"-n {ns} link set {Interface} up",
                $"-n {network.Switch} link set p{i} master br0",
                $"-n {network.Switch} link set p{i} up",
            ]);
        }

        foreach (var command in commands)
        {
            var (ok, error) = await IpCommand.RunAsync(command);
            if (!ok)
            {
                await network.DisposeAsync();
                return (null, $"`ip {command}` failed: {error}");
            }
        }

        return (network, string.Empty);
    }

    /// <summary>Starts <paramref name="arguments"/> inside the namespace of <paramref name="host"/>.</summary>
    public ChildProcess Start(int host, IEnumerable<string> arguments, IDictionary<string, string> environment) =>
        ChildProcess.Start("ip", ["netns", "exec", Namespace(host), .. arguments], environment);

    /// <summary>Cuts <paramref name="hosts"/> off from the others: their cables move to the second bridge, where they
    /// still reach each other.</summary>
    public async Task SplitAsync(IEnumerable<int> hosts)
    {
        foreach (var host in hosts)
        {
            await MustAsync($"-n {Switch} link set p{host} master br1");
            _apart.Add(host);
        }
    }

    /// <summary>Puts every cable back on the first bridge.</summary>
    public async Task HealAsync()
    {
        foreach (var host in _apart.ToList())
        {
            await MustAsync($"-n {Switch} link set p{host} master br0");
            _apart.Remove(host);
        }
    }

    /// <summary>Adds 5 ms of delay and 1% loss on every cable, both ways, when the kernel has netem; false when not.</summary>
    public async Task<bool> TryAddDelayAndLossAsync()
    {
        for (var i = 0; i < Hosts; i++)
        {
            foreach (var (ns, device) in new[] { (Switch, $"p{i}"), (Namespace(i), Interface) })
            {
                if (!(await IpCommand.RunAsync("ip", $"netns exec {ns} tc qdisc add dev {device} root netem delay 5ms loss 1%")).Ok)
                {
                    return false;
                }
            }
        }

        return true;
    }

    public async ValueTask DisposeAsync()
    {
        for (var i = 0; i < Hosts; i++)
        {
            await DeleteAsync(Namespace(i));
        }

        await DeleteAsync(Switch);
    }

    private static async Task MustAsync(string command)
    {
        var (ok, error) = await IpCommand.RunAsync(command);
        Assert.True(ok, $"`ip {command}` failed: {error}");
    }

    /// <summary>Kills whatever still runs in a namespace (processes started there by this test), then deletes it.</summary>
    private static async Task DeleteAsync(string ns)
    {
        foreach (var pid in (await IpCommand.OutputAsync($"netns pids {ns}")).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            try
            {
                using var process = System.Diagnostics.Process.GetProcessById(int.Parse(pid, CultureInfo.InvariantCulture));
                process.Kill(entireProcessTree: true);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException)
            {
                // Gone meanwhile.
            }
        }

        await IpCommand.RunAsync($"netns del {ns}");
    }

    /// <summary>Deletes the namespaces of test processes that are gone (a run that crashed or was killed).</summary>
    private static async Task RemoveLeftoversAsync()
    {
        foreach (var line in (await IpCommand.OutputAsync("netns list")).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var ns = line.Split(' ')[0];
            if (!ns.StartsWith(Prefix, StringComparison.Ordinal)
                || !int.TryParse(ns[Prefix.Length..].Split('-')[0], CultureInfo.InvariantCulture, out var owner))
            {
                continue;
            }

            if (!Directory.Exists($"/proc/{owner}"))
            {
                await DeleteAsync(ns);
            }
        }
    }
}
