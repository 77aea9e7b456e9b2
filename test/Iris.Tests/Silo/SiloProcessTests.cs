using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Iris.Tests.Silo;

/// <summary>Runs the real Iris.Silo program as a separate process, on loopback ports chosen for the test.</summary>
public class SiloProcessTests
{
    private static readonly TimeSpan StartLimit = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task The_silo_starts_on_localhost_logs_where_it_listens_and_stops_cleanly_on_ctrl_c()
    {
        var siloPort = FreePort();
        var gatewayPort = FreePort();
        using var silo = StartSilo(siloPort, gatewayPort, out var output);

        var listening = $"listening: silo-to-silo on 127.0.0.1:{siloPort}, clients on 127.0.0.1:{gatewayPort}";
        await WaitForAsync(() => output.ToString().Contains(listening, StringComparison.Ordinal), StartLimit, silo, output);

        using (var client = new TcpClient())
        {
            await client.ConnectAsync(IPAddress.Loopback, gatewayPort);
        }

        Interrupt(silo);
        using var exitLimit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await silo.WaitForExitAsync(exitLimit.Token);
        Assert.True(silo.ExitCode == 0, $"exit code {silo.ExitCode}\n{output}");
        Assert.Contains("Iris silo stopped", output.ToString());
    }

    [Fact]
    public async Task A_silo_with_invalid_ports_refuses_to_start_and_says_which_setting_is_wrong()
    {
        using var silo = StartSilo(5000, 5000, out var output);
        using var exitLimit = new CancellationTokenSource(StartLimit);
        await silo.WaitForExitAsync(exitLimit.Token);
        Assert.NotEqual(0, silo.ExitCode);
        Assert.Contains("SiloPort and GatewayPort must differ", output.ToString());
    }

    private static Process StartSilo(int siloPort, int gatewayPort, out StringBuilder output)
    {
        var dll = Path.Combine(RepositoryRoot(), "src", "Iris.Silo", "bin", BuildConfiguration(), "net10.0", "Iris.Silo.dll");
        Assert.True(File.Exists(dll), $"Iris.Silo is not built at {dll}");
        var start = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { dll },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment["Iris__Silo__SiloPort"] = siloPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["Iris__Silo__GatewayPort"] = gatewayPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["Logging__Console__DisableColors"] = "true";
        var process = Process.Start(start)!;
        var text = new StringBuilder();
        process.OutputDataReceived += (_, e) => { lock (text) { text.AppendLine(e.Data); } };
        process.ErrorDataReceived += (_, e) => { lock (text) { text.AppendLine(e.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        output = text;
        return process;
    }

    private static void Interrupt(Process process)
    {
        // Ctrl-C is SIGINT; Process.Kill would send SIGKILL and skip the graceful shutdown under test.
        using var kill = Process.Start("kill", ["-INT", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    private static async Task WaitForAsync(Func<bool> condition, TimeSpan limit, Process process, StringBuilder output)
    {
        var deadline = DateTime.UtcNow + limit;
        while (!condition())
        {
            if (process.HasExited || DateTime.UtcNow > deadline)
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                }

                Assert.Fail($"The silo did not report its endpoints within {limit}:\n{output}");
            }

            await Task.Delay(100);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string BuildConfiguration() =>
        AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";

    private static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Iris.Orleans.sln")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException("Iris.Orleans.sln not found above " + AppContext.BaseDirectory);
    }
}
