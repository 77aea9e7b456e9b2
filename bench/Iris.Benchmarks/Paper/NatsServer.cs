using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Iris.Benchmarks.Paper;

/// <summary>
/// A <c>nats-server</c> child process bound to loopback on a free port, the broker of the NATS baseline. It runs with
/// no configuration file: the default 1 MB max_payload is enough for 64 KiB payloads. If the binary is missing,
/// <c>bench/setup.sh</c> is run once to install it. <see cref="CpuTime"/> reads the process's own counters, so the
/// broker's CPU can be charged to the messages it carried.
/// </summary>
public sealed class NatsServer : IAsyncDisposable
{
    private static readonly string[] KnownLocations = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"];
    private readonly Process process;
    private readonly StringBuilder output;

    private NatsServer(Process process, StringBuilder output, int port)
    {
        this.process = process;
        this.output = output;
        Url = string.Create(CultureInfo.InvariantCulture, $"nats://127.0.0.1:{port}");
    }

    /// <summary>The client URL, <c>nats://127.0.0.1:port</c>.</summary>
    public string Url { get; }

    /// <summary>User plus system CPU time the server process has used so far (from <c>/proc/&lt;pid&gt;/stat</c>).</summary>
    public TimeSpan CpuTime
    {
        get
        {
            // The command name (field 2) is in parentheses and may hold spaces: fields are counted after the last ')'.
            var stat = File.ReadAllText(string.Create(CultureInfo.InvariantCulture, $"/proc/{process.Id}/stat"));
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            // fields[0] is field 3 (state): utime is field 14, stime field 15.
            var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            return TimeSpan.FromSeconds(ticks / (double)ClockTicksPerSecond.Value);
        }
    }

    private static Lazy<int> ClockTicksPerSecond { get; } = new(ReadClockTicks);

    /// <summary>Starts a server on a free loopback port and waits (at most 10 s) until it accepts connections.</summary>
    public static async Task<NatsServer> StartAsync(CancellationToken cancellationToken = default)
    {
        var executable = FindExecutable() ?? await InstallAsync(cancellationToken);
        var port = FreePort();
        var output = new StringBuilder();
        var info = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "-a", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture) })
        {
            info.ArgumentList.Add(argument);
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {executable}.");
        process.OutputDataReceived += (_, e) => Append(output, e.Data);
        process.ErrorDataReceived += (_, e) => Append(output, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new NatsServer(process, output, port);

        var deadline = Stopwatch.GetTimestamp() + (10 * Stopwatch.Frequency);
        while (true)
        {
            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync(IPAddress.Loopback, port, cancellationToken);
                return server;
            }
            catch (SocketException) when (!process.HasExited && Stopwatch.GetTimestamp() < deadline)
            {
                await Task.Delay(50, cancellationToken);
            }
            catch (SocketException)
            {
                await server.DisposeAsync();
                string log;
                lock (output)
                {
                    log = output.ToString();
                }

                throw new InvalidOperationException(
                    $"nats-server ({executable}) did not accept connections on 127.0.0.1:{port} within 10 s. Its output:{Environment.NewLine}{log}");
            }
        }
    }

    /// <summary>Kills the server and waits for it to exit.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
        }

        await process.WaitForExitAsync();
        process.Dispose();
    }

    private static void Append(StringBuilder output, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (output)
        {
            output.AppendLine(line);
        }
    }

    private static string? FindExecutable()
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? string.Empty;
        return path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(directory => Path.Combine(directory, "nats-server"))
            .Concat(KnownLocations)
            .FirstOrDefault(File.Exists);
    }

    private static async Task<string> InstallAsync(CancellationToken cancellationToken)
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Iris.Orleans.sln")))
        {
            directory = directory.Parent;
        }

        if (directory is null)
        {
            throw new InvalidOperationException(
                "nats-server is missing and bench/setup.sh was not found (no Iris.Orleans.sln above the benchmark): install the Debian package nats-server.");
        }

        var script = Path.Combine(directory.FullName, "bench", "setup.sh");
        var info = new ProcessStartInfo("bash") { UseShellExecute = false };
        info.ArgumentList.Add(script);
        using var setup = Process.Start(info) ?? throw new InvalidOperationException($"Could not run {script}.");
        await setup.WaitForExitAsync(cancellationToken);
        if (setup.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"{script} failed (exit code {setup.ExitCode}): nats-server is missing and cannot be installed here: install the Debian package nats-server.");
        }

        return FindExecutable() ?? throw new InvalidOperationException(
            $"{script} succeeded but nats-server is still not on PATH or in /usr/sbin, /usr/bin.");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static int ReadClockTicks()
    {
        try
        {
            var info = new ProcessStartInfo("getconf") { RedirectStandardOutput = true, UseShellExecute = false };
            info.ArgumentList.Add("CLK_TCK");
            using var getconf = Process.Start(info);
            if (getconf is not null)
            {
                var text = getconf.StandardOutput.ReadToEnd();
                getconf.WaitForExit();
                if (int.TryParse(text.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var ticks) && ticks > 0)
                {
                    return ticks;
                }
            }
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // No getconf: Linux has used 100 ticks per second (USER_HZ) on every common architecture.
        }

        return 100;
    }
}
