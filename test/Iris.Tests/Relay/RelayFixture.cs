using System.Net;
using Iris.Relay.Hosting;
using Iris.Tests.Patterns;
using Iris.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Iris.Tests.Relay;

/// <summary>Two Iris silos in this process, each serving the relay protocol on a free loopback port.</summary>
public sealed class RelayFixture : IrisClusterFixture
{
    internal IPEndPoint RelayA => A.Services.GetRequiredService<RelayListener>().Endpoint!;

    internal IPEndPoint RelayB => B.Services.GetRequiredService<RelayListener>().Endpoint!;

    protected override Task<IHost> StartSiloAsync(string key, int discoveryPort, Microsoft.Extensions.Logging.ILoggerProvider log) =>
        InProcessSilo.StartAsync(key, discoveryPort, relay: true, log: log);
}
