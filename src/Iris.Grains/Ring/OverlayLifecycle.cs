using Iris.Overlay.Hosting;
using Iris.Overlay.Security;
using Iris.Overlay.Transport;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Orleans.Runtime;
using Microsoft.Extensions.Logging;

namespace Iris.Ring;

/// <summary>
/// Starts this silo's overlay node before anything else in the silo, and leaves the ring after everything else has
/// stopped: Orleans writes its last membership rows, which live on the ring, while shutting down.
/// </summary>
internal sealed class OverlayLifecycle(IrisOverlay overlay) : ILifecycleParticipant<ISiloLifecycle>
{
    /// <summary>Before Orleans' runtime initialises (membership included).</summary>
    public const int Stage = ServiceLifecycleStage.RuntimeInitialize - 100;

    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(OverlayLifecycle), Stage, overlay.StartAsync, async cancellationToken => await overlay.LeaveAsync(cancellationToken).ConfigureAwait(false));

    /// <summary>Overlay settings from <c>Iris:Overlay</c>, seeds and discovery from <c>Iris:Network</c>.</summary>
    internal static OverlayOptions Bind(IConfiguration configuration)
    {
        var options = new OverlayOptions();
        configuration.GetSection("Iris:Overlay").Bind(options);
        foreach (var seed in configuration.GetSection("Iris:Network:Seeds").Get<string[]>() ?? [])
        {
            options.Seeds.Add(seed);
        }

        configuration.GetSection("Iris:Network:Discovery").Bind(options.Discovery);
        if (options.ListenAddress is { Length: > 0 } listen && !HostAddress.TryParse(listen, out _))
        {
            throw new FormatException($"{OverlayHost.ListenAddressSetting} '{listen}' is not an IP address.");
        }

        var tcp = new TcpTransportOptionsValidator().Validate(null, options.Tcp);
        var pastry = new Overlay.Pastry.PastryOptionsValidator().Validate(null, options.Pastry);
        if (tcp.Failed || pastry.Failed)
        {
            throw new Microsoft.Extensions.Options.OptionsValidationException(
                nameof(OverlayOptions), typeof(OverlayOptions), [.. tcp.Failures ?? [], .. pastry.Failures ?? []]);
        }

        return options;
    }
}
