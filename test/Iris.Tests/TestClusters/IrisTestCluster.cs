using Iris.Hosting;
using Iris.Overlay.Security;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.TestingHost;

namespace Iris.Tests.TestClusters;

/// <summary>Orleans' own test cluster with Iris: silos on the overlay membership (not the test cluster's), a network
/// key and discovery ports of their own, and a client finding them by beacons.</summary>
internal static class IrisTestCluster
{
    private sealed class SiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            // A silo declared dead stops its host, as in Iris.Silo (the test cluster's own handler would too).
            siloBuilder
                .UseIris(options =>
                {
                    options.ConfigureEndpoints = false;
                    options.EchoCluster = "echo";
                })
                .StopWhenDeclaredDead();
            siloBuilder.Services.AddSingleton<HeldHops>();
            siloBuilder.Services.AddSingleton<IIncomingGrainCallFilter>(services => services.GetRequiredService<HeldHops>());
            if (Environment.GetEnvironmentVariable("IRIS_DEBUG_LOG") is { } path)
            {
                var silo = siloBuilder.Configuration["SiloName"] ?? "silo";
                siloBuilder.Services.AddLogging(l => l.AddProvider(new FileLoggerProvider(path, silo)).SetMinimumLevel(Microsoft.Extensions.Logging.LogLevel.Debug));
            }
        }
    }

    private sealed class FileLoggerProvider(string path, string silo) : Microsoft.Extensions.Logging.ILoggerProvider
    {
        private static readonly object Gate = new();

        public Microsoft.Extensions.Logging.ILogger CreateLogger(string categoryName) => new FileLogger(path, $"{silo} {categoryName}");

        public void Dispose()
        {
        }

        private sealed class FileLogger(string path, string category) : Microsoft.Extensions.Logging.ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => logLevel >= Microsoft.Extensions.Logging.LogLevel.Debug;

            public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                lock (Gate)
                {
                    File.AppendAllText(path, $"{DateTime.UtcNow:O} {logLevel} {category}: {formatter(state, exception)} {exception}\n");
                }
            }
        }
    }

    private sealed class ClientConfigurator : IClientBuilderConfigurator
    {
        public void Configure(IConfiguration configuration, IClientBuilder clientBuilder)
        {
            clientBuilder.UseIris(options =>
            {
                options.NetworkKey = configuration["Iris:Network:Key"];
                options.DiscoveryPort = int.Parse(configuration["Iris:Network:Discovery:Port"]!, System.Globalization.CultureInfo.InvariantCulture);
            });
            clientBuilder.Services.AddSingleton<IOutgoingGrainCallFilter, Support.LostAnswers>();
        }
    }

    /// <summary>Deploys <paramref name="silos"/> silos and the client; with <paramref name="tcp"/> they talk over real
    /// sockets (as Orleans clients outside the test cluster must), else over Orleans' in-memory test transport.</summary>
    public static async Task<TestCluster> DeployAsync(short silos, bool tcp = false)
    {
        var builder = new TestClusterBuilder(silos);
        builder.Options.UseTestClusterMembership = false;
        if (tcp)
        {
            builder.Options.ConnectionTransport = ConnectionTransportType.TcpSocket;
        }

        builder.ConfigureHostConfiguration(configuration => configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Iris:Network:Key"] = Convert.ToBase64String(NetworkKey.Generate().Bytes),
            ["Iris:Network:Discovery:Port"] = (48000 + (Random.Shared.Next(0, 200) * 16)).ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Iris:Network:Discovery:Scope"] = "Loopback",
            ["Iris:Overlay:ListenAddress"] = "127.0.0.1",
        }));
        builder.AddSiloBuilderConfigurator<SiloConfigurator>();
        builder.AddClientBuilderConfigurator<ClientConfigurator>();
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

    /// <summary>The services of an in-process silo.</summary>
    public static IServiceProvider Services(this SiloHandle silo) => ((InProcessSiloHandle)silo).SiloHost.Services;

    /// <summary><see cref="IIrisClient"/> of an in-process silo.</summary>
    public static IIrisClient Iris(this SiloHandle silo) => silo.Services().GetRequiredService<IIrisClient>();

    /// <summary><see cref="IIrisClient"/> of the cluster's client.</summary>
    public static IIrisClient Iris(this TestCluster cluster) => cluster.Client.ServiceProvider.GetRequiredService<IIrisClient>();
}
