using Microsoft.Extensions.Logging;
using Orleans.Runtime;

namespace Iris.Hosting;

/// <summary>Logs where the silo listens once it is active, and when it has stopped.</summary>
internal sealed partial class SiloEndpointLogger(ILocalSiloDetails silo, ILogger<SiloEndpointLogger> logger)
    : ILifecycleParticipant<ISiloLifecycle>
{
    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(
            nameof(SiloEndpointLogger),
            ServiceLifecycleStage.Active,
            _ =>
            {
                LogListening(logger, silo.Name, silo.SiloAddress.Endpoint.ToString(), silo.GatewayAddress?.Endpoint.ToString() ?? "(none)", silo.ClusterId);
                return Task.CompletedTask;
            },
            _ =>
            {
                LogStopping(logger, silo.Name);
                return Task.CompletedTask;
            });

    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "Iris silo {Name} listening: silo-to-silo on {SiloEndpoint}, clients on {GatewayEndpoint}, cluster '{ClusterId}'")]
    private static partial void LogListening(ILogger logger, string name, string siloEndpoint, string gatewayEndpoint, string clusterId);

    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "Iris silo {Name} stopping")]
    private static partial void LogStopping(ILogger logger, string name);
}
