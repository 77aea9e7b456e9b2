using System.Globalization;
using Iris.Hosting;
using Iris.Overlay.Security;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Iris.Chaos;

/// <summary>The run's own Iris network on loopback: a fresh network key and a discovery port range of its own, the
/// paths of the programs it starts, and the helpers that start silos, members and the runner's client.</summary>
internal sealed class ChaosNetwork
{
    private const int DiscoveryPortBase = 52000;
    private int _silosStarted;

    public ChaosNetwork(string directory)
    {
        Directory = directory;
        var root = FindRoot();
        var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Debug" : "Release";
        SiloProgram = Path.Combine(root, "src", "Iris.Silo", "bin", configuration, "net10.0", "Iris.Silo.dll");
        if (!File.Exists(SiloProgram))
        {
            throw new InvalidOperationException($"Iris.Silo is not built at {SiloProgram}: build tools/Iris.Chaos (it builds the silo).");
        }
    }

    /// <summary>The run's folder: the children's logs and the members' files.</summary>
    public string Directory { get; }

    public string Key { get; } = Convert.ToBase64String(NetworkKey.Generate().Bytes);

    // The range is chosen afresh per run, not by the seed: two runs on one machine must not hear each other's beacons
    // (the key keeps them apart anyway), and the seed is for the kills.
    public int DiscoveryPort { get; } = DiscoveryPortBase + (Random.Shared.Next(0, 250) * 16);

    public string SiloProgram { get; }

    private string Port => DiscoveryPort.ToString(CultureInfo.InvariantCulture);

    /// <summary>Starts a silo and waits until it is active: in a cluster of <paramref name="activeSilos"/> when given
    /// (the first silos, started one after another), else as soon as it reports itself active (a replacement).</summary>
    public async Task<ChildProcess> StartSiloAsync(int? activeSilos, CancellationToken cancellationToken)
    {
        var number = Interlocked.Increment(ref _silosStarted);
        var environment = new Dictionary<string, string>
        {
            ["DOTNET_ENVIRONMENT"] = "Development",
            ["Iris__Network__Key"] = Key,
            ["Iris__Network__Discovery__Port"] = Port,
        };
        var silo = ChildProcess.Start($"silo-{number}", "dotnet", [SiloProgram], environment, Path.Combine(Directory, $"silo-{number}.log"));
        if (activeSilos is { } count)
        {
            await silo.WaitForLineAsync(l => l.Contains($"has {count} active silos", StringComparison.Ordinal), TimeSpan.FromSeconds(90), $"{count} active silos", cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await silo.WaitForLineAsync(l => l.Contains("listening: silo-to-silo", StringComparison.Ordinal), TimeSpan.FromSeconds(90), "the silo active", cancellationToken).ConfigureAwait(false);
        }

        return silo;
    }

    /// <summary>Starts a member process (this program's <c>member</c> command) and waits until it is registered; with
    /// <paramref name="overload"/> it serves the overloaded clusters too.</summary>
    public async Task<(ChildProcess Process, string File)> StartMemberAsync(int number, bool overload, CancellationToken cancellationToken)
    {
        var file = Path.Combine(Directory, $"member-{number}.executions");
        var member = ChildProcess.Start(
            $"member-{number}", "dotnet", [typeof(ChaosNetwork).Assembly.Location, "member", file, .. overload ? ["overload"] : Array.Empty<string>()],
            ClientEnvironment(), Path.Combine(Directory, $"member-{number}.log"));
        await member.WaitForLineAsync(l => l == "READY", TimeSpan.FromSeconds(90), "the member registered", cancellationToken).ConfigureAwait(false);
        return (member, file);
    }

    /// <summary>Starts the overload callers' process (this program's <c>overload-callers</c> command) and waits until
    /// it has had an answer from each overloaded cluster.</summary>
    public async Task<ChildProcess> StartOverloadCallersAsync(IEnumerable<string> arguments, CancellationToken cancellationToken)
    {
        var callers = ChildProcess.Start(
            "overload-callers", "dotnet", [typeof(ChaosNetwork).Assembly.Location, "overload-callers", .. arguments],
            ClientEnvironment(), Path.Combine(Directory, "overload-callers.log"));
        await callers.WaitForLineAsync(l => l == "READY", TimeSpan.FromSeconds(90), "the overload callers ready", cancellationToken).ConfigureAwait(false);
        return callers;
    }

    private Dictionary<string, string> ClientEnvironment() => new()
    {
        ["DOTNET_ENVIRONMENT"] = "Development",
        ["Iris__Client__NetworkKey"] = Key,
        ["Iris__Client__DiscoveryPort"] = Port,
    };

    /// <summary>The runner's own Orleans client, the load generator; its log (errors only) goes to standard error.</summary>
    public async Task<IHost> StartClientAsync(SlowCalls slowCalls, CancellationToken cancellationToken)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.AddConsole(console => console.LogToStandardErrorThreshold = LogLevel.Trace).SetMinimumLevel(LogLevel.Error);
        builder.UseOrleansClient(client => client
            .UseIris(options =>
            {
                options.NetworkKey = Key;
                options.DiscoveryPort = DiscoveryPort;
            })
            .AddOutgoingGrainCallFilter(slowCalls));
        builder.Services.AddSingleton<IHostLifetime, QuietLifetime>();
        var host = builder.Build();
        await host.StartAsync(cancellationToken).ConfigureAwait(false);
        _ = host.Services.GetRequiredService<IIrisClient>();
        return host;
    }

    private static string FindRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Iris.Orleans.sln")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException("Iris.Orleans.sln not found above " + AppContext.BaseDirectory);
    }
}
