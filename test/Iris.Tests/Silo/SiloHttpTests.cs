using System.Globalization;
using System.Net;
using Iris.Hosting;
using Iris.Overlay.Security;
using Iris.Tests.Support;

namespace Iris.Tests.Silo;

/// <summary>The node's HTTP endpoint, on the real Iris.Silo program: health during start-up, steady state and shutdown.</summary>
public class SiloHttpTests
{
    private static ChildProcess StartSilo(IDictionary<string, string> settings)
    {
        var variables = new Dictionary<string, string>(settings)
        {
            ["DOTNET_ENVIRONMENT"] = "Development",
            ["Logging__Console__DisableColors"] = "true",
            ["Iris__Network__Key"] = Convert.ToBase64String(NetworkKey.Generate().Bytes),
            ["Iris__Network__Discovery__Port"] = (41000 + (Random.Shared.Next(0, 500) * 16)).ToString(CultureInfo.InvariantCulture),
            ["Iris__Silo__SiloPort"] = PortPicker.AnyFree().ToString(CultureInfo.InvariantCulture),
            ["Iris__Silo__GatewayPort"] = PortPicker.AnyFree().ToString(CultureInfo.InvariantCulture),
            ["Iris__Relay__Enabled"] = "false",
        };
        return ChildProcess.Start("dotnet", [RepositoryPaths.Program("src", "Iris.Silo")], variables);
    }

    /// <summary>The status code, or 0 when nothing answers.</summary>
    private static async Task<int> StatusAsync(HttpClient http, string path)
    {
        try
        {
            using var response = await http.GetAsync(path);
            return (int)response.StatusCode;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return 0;
        }
    }

    [Fact]
    public async Task Health_is_live_while_starting_ready_once_joined_and_not_ready_from_the_moment_shutdown_starts()
    {
        var port = PortPicker.AnyFree();
        await using var silo = StartSilo(new Dictionary<string, string>
        {
            ["Iris__Http__Port"] = port.ToString(CultureInfo.InvariantCulture),

            // A member to take leave of: the node stays in its shutdown for a moment while the member leaves.
            ["Iris__Silo__EchoCluster"] = "health-echo",
        });
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(5) };

        // The endpoint comes up before the silo: for the discovery wait (2 s) at least, live and not ready.
        var liveNotReady = false;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (await StatusAsync(http, "healthz/ready") != 200)
        {
            Assert.True(DateTime.UtcNow < deadline, $"not ready within 60 s; output:\n{silo.Output}");
            liveNotReady |= await StatusAsync(http, "healthz/live") == 200 && await StatusAsync(http, "healthz/ready") == 503;
            await Task.Delay(50);
        }

        Assert.True(liveNotReady, "the endpoint never answered live and not ready while the node started");
        Assert.Equal(200, await StatusAsync(http, "healthz/live"));
        await silo.WaitForAsync(lines => lines.Any(l => l.Contains($"HTTP            http://127.0.0.1:{port}/", StringComparison.Ordinal)), TimeSpan.FromSeconds(30), "the start-up block with the HTTP address");

        // From the stop on: 503 while it stops, never ready again, until nothing answers.
        silo.Interrupt();
        var seen = new List<int>();
        for (var status = await StatusAsync(http, "healthz/ready"); status != 0; status = await StatusAsync(http, "healthz/ready"))
        {
            seen.Add(status);
            await Task.Delay(10);
        }

        Assert.Contains(503, seen);
        Assert.True(seen.SkipWhile(s => s == 200).All(s => s == 503), $"after the stop: {string.Join(", ", seen)}");
        await silo.WaitForExitAsync(TimeSpan.FromSeconds(30));
        Assert.True(silo.ExitCode == 0, $"exit code {silo.ExitCode}\n{silo.Output}");
    }

    [Fact]
    public async Task A_bad_http_setting_stops_the_node_at_start_naming_the_setting()
    {
        await using var silo = StartSilo(new Dictionary<string, string> { ["Iris__Http__Port"] = "70000" });
        await silo.WaitForExitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(1, silo.ExitCode);
        Assert.Contains(silo.Lines, l => l.Contains("Iris:Http:Port must be between 1 and 65535; it is 70000.", StringComparison.Ordinal));
    }
}
