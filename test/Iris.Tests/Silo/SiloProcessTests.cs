using Iris.Hosting;
using System.Net;
using System.Net.Sockets;
using Iris.Overlay.Security;
using Iris.Tests.Support;

namespace Iris.Tests.Silo;

/// <summary>Runs the real Iris.Silo program as separate processes, on loopback.</summary>
public class SiloProcessTests
{
    private static readonly TimeSpan StartLimit = TimeSpan.FromSeconds(60);

    private static ChildProcess StartSilo(string environment, IDictionary<string, string> settings)
    {
        var variables = new Dictionary<string, string>(settings)
        {
            ["DOTNET_ENVIRONMENT"] = environment,
            ["Logging__Console__DisableColors"] = "true",
        };
        return ChildProcess.Start("dotnet", [RepositoryPaths.Program("src", "Iris.Silo")], variables);
    }

    /// <summary>A network key and a discovery port range of the test's own, so silos of other tests stay apart.</summary>
    private static Dictionary<string, string> Network() => new()
    {
        ["Iris__Network__Key"] = Convert.ToBase64String(NetworkKey.Generate().Bytes),
        ["Iris__Network__Discovery__Port"] = (40000 + (Random.Shared.Next(0, 1000) * 16)).ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    private static string OverlayKeyOf(ChildProcess silo)
    {
        var line = silo.Lines.First(l => l.Contains("Overlay node ", StringComparison.Ordinal));
        return line[(line.IndexOf("Overlay node ", StringComparison.Ordinal) + "Overlay node ".Length)..].Split(' ')[0];
    }

    [Fact]
    public async Task The_silo_starts_on_localhost_logs_where_it_listens_and_stops_cleanly_on_ctrl_c()
    {
        var siloPort = PortPicker.AnyFree();
        var gatewayPort = PortPicker.AnyFree();
        var settings = Network();
        settings["Iris__Silo__SiloPort"] = siloPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        settings["Iris__Silo__GatewayPort"] = gatewayPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await using var silo = StartSilo("Development", settings);

        var listening = $"listening: silo-to-silo on 127.0.0.1:{siloPort}, clients on 127.0.0.1:{gatewayPort}";
        await silo.WaitForAsync(lines => lines.Any(l => l.Contains(listening, StringComparison.Ordinal)), StartLimit, "the listening line");
        using (var client = new TcpClient())
        {
            await client.ConnectAsync(IPAddress.Loopback, gatewayPort);
        }

        silo.Interrupt();
        await silo.WaitForExitAsync(TimeSpan.FromSeconds(30));
        Assert.True(silo.ExitCode == 0, $"exit code {silo.ExitCode}\n{silo.Output}");
        Assert.Contains(silo.Lines, l => l.Contains("Iris silo stopped", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_silo_asked_to_stop_while_it_is_still_starting_stops_cleanly()
    {
        // Ctrl-C while the host is starting cancels Orleans' lifecycle midway; that is a stop on request, not a crash.
        await using var silo = StartSilo("Development", Network());
        await silo.WaitForAsync(lines => lines.Any(l => l.Contains("Overlay transport listening", StringComparison.Ordinal)), StartLimit, "the overlay transport listening");
        silo.Interrupt();
        await silo.WaitForExitAsync(TimeSpan.FromSeconds(30));
        Assert.True(silo.ExitCode == 0, $"exit code {silo.ExitCode}\n{silo.Output}");
        Assert.Contains(silo.Lines, l => l.Contains("Iris silo stopped", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Two_silos_started_with_defaults_on_one_machine_both_start_and_find_each_other_as_ring_neighbours()
    {
        // Started at the same instant, as a script would: both find the default ports free when they look.
        var settings = Network();
        await using var first = StartSilo("Development", settings);
        await using var second = StartSilo("Development", settings);
        await first.WaitForAsync(lines => lines.Any(l => l.Contains("Overlay node ", StringComparison.Ordinal)), StartLimit, "the first overlay node");
        await second.WaitForAsync(lines => lines.Any(l => l.Contains("Overlay node ", StringComparison.Ordinal)), StartLimit, "the second overlay node");
        await first.WaitForAsync(lines => lines.Any(l => l.Contains("listening: silo-to-silo", StringComparison.Ordinal)), StartLimit, "the first silo listening");
        await second.WaitForAsync(lines => lines.Any(l => l.Contains("listening: silo-to-silo", StringComparison.Ordinal)), StartLimit, "the second silo listening");
        string Listening(ChildProcess silo) => silo.Lines.First(l => l.Contains("listening: silo-to-silo", StringComparison.Ordinal)).Split("listening: ")[1];
        Assert.NotEqual(Listening(first).Split(',')[0], Listening(second).Split(',')[0]);
        Assert.NotEqual(Listening(first).Split(',')[1], Listening(second).Split(',')[1]);

        var started = DateTime.UtcNow;
        await first.WaitForAsync(lines => lines.Any(l => l.Contains($"Ring neighbour {OverlayKeyOf(second)}", StringComparison.Ordinal)), TimeSpan.FromSeconds(10), "the second silo as ring neighbour");
        await second.WaitForAsync(lines => lines.Any(l => l.Contains($"Ring neighbour {OverlayKeyOf(first)}", StringComparison.Ordinal)), TimeSpan.FromSeconds(10), "the first silo as ring neighbour");
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(10));

        // Orleans membership lives on the ring: the two silos form one Orleans cluster with no other provider.
        await first.WaitForAsync(lines => lines.Any(l => l.Contains("has 2 active silos", StringComparison.Ordinal)), StartLimit, "a two-silo Orleans cluster");
        await second.WaitForAsync(lines => lines.Any(l => l.Contains("has 2 active silos", StringComparison.Ordinal)), StartLimit, "a two-silo Orleans cluster");

        // When one stops cleanly, the other sees it go.
        second.Interrupt();
        await second.WaitForExitAsync(TimeSpan.FromSeconds(30));
        Assert.True(second.ExitCode == 0, $"exit code {second.ExitCode} after a clean stop; the silo's last output:\n{string.Join('\n', second.Lines.TakeLast(80))}");
        await first.WaitForAsync(
            lines => lines.SkipWhile(l => !l.Contains("has 2 active silos", StringComparison.Ordinal)).Any(l => l.Contains("has 1 active silos", StringComparison.Ordinal)),
            StartLimit,
            "the cluster back to one silo");
    }

    [Fact]
    public async Task A_silo_with_another_network_key_cannot_join_even_when_pointed_at_the_cluster()
    {
        var settings = Network();
        await using var member = StartSilo("Development", settings);
        await member.WaitForAsync(lines => lines.Any(l => l.Contains("has 1 active silos", StringComparison.Ordinal)), StartLimit, "the silo active");
        var overlayLine = member.Lines.First(l => l.Contains("Overlay node ", StringComparison.Ordinal));
        var overlayAddress = overlayLine[(overlayLine.IndexOf(" at ", StringComparison.Ordinal) + 4)..].Split(',')[0];

        var intruderSettings = Network();
        intruderSettings["Iris__Network__Seeds__0"] = overlayAddress;
        await using var intruder = StartSilo("Development", intruderSettings);
        await member.WaitForAsync(lines => lines.Any(l => l.Contains("refused", StringComparison.Ordinal)), StartLimit, "the intruder refused");
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.DoesNotContain(member.Lines, l => l.Contains("has 2 active silos", StringComparison.Ordinal));
        Assert.DoesNotContain(member.Lines, l => l.Contains("Ring neighbour", StringComparison.Ordinal));

        // Neither silo's output, refusals included, shows either network key.
        foreach (var key in new[] { settings["Iris__Network__Key"], intruderSettings["Iris__Network__Key"] })
        {
            var hex = Convert.ToHexString(Convert.FromBase64String(key));
            Assert.DoesNotContain(key, member.Output + intruder.Output, StringComparison.Ordinal);
            Assert.DoesNotContain(hex, member.Output + intruder.Output, StringComparison.OrdinalIgnoreCase);
        }
    }

    [Fact]
    public async Task A_production_silo_without_a_network_key_refuses_to_start_and_says_how_to_create_one()
    {
        await using var silo = StartSilo("Production", new Dictionary<string, string>
        {
            ["Iris__Silo__SiloPort"] = PortPicker.AnyFree().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Iris__Silo__GatewayPort"] = PortPicker.AnyFree().ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        await silo.WaitForExitAsync(StartLimit);
        Assert.NotEqual(0, silo.ExitCode);
        Assert.Contains(silo.Lines, l => l.Contains("openssl rand -base64 32", StringComparison.Ordinal));
        Assert.DoesNotContain(silo.Lines, l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_silo_with_invalid_ports_refuses_to_start_and_says_which_setting_is_wrong()
    {
        var settings = Network();
        settings["Iris__Silo__SiloPort"] = "5000";
        settings["Iris__Silo__GatewayPort"] = "5000";
        await using var silo = StartSilo("Development", settings);
        await silo.WaitForExitAsync(StartLimit);
        Assert.NotEqual(0, silo.ExitCode);
        Assert.Contains(silo.Lines, l => l.Contains("SiloPort and GatewayPort must differ", StringComparison.Ordinal));
    }

}
