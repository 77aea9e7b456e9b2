using Iris.Overlay.Hosting;
using Iris.Overlay.Security;
using Iris.Overlay.Transport;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Orleans.Runtime;
using Microsoft.Extensions.Logging;

namespace Iris.Hosting;

/// <summary>
/// Starts this silo's overlay node before anything else in the silo, and leaves the ring after everything else has
/// stopped: Orleans writes its last membership rows, which live on the ring, while shutting down.
/// </summary>
internal sealed class OverlayLifecycle(IrisOverlay overlay) : ILifecycleParticipant<ISiloLifecycle>
{
    /// <summary>Before Orleans' runtime initialises (membership included).</summary>
    public const int Stage = ServiceLifecycleStage.RuntimeInitialize - 100;

    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(OverlayLifecycle), Stage, overlay.StartAsync, async _ => await overlay.DisposeAsync().ConfigureAwait(false));

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

/// <summary>Where a silo's network key comes from.</summary>
internal static class NetworkKeys
{
    /// <summary>
    /// <c>Iris:Network:Key</c> (base64), else <c>Iris:Network:KeyFile</c>; in development with neither, the user's
    /// development key (<c>~/.iris/network-key</c>, created on first use), so every node a developer starts joins the
    /// same network. In production a missing key stops the silo with a message saying how to create one.
    /// </summary>
    public static NetworkKey Resolve(IConfiguration configuration, bool development) =>
        Resolve(configuration["Iris:Network:Key"], configuration["Iris:Network:KeyFile"], development ? DevelopmentPath(configuration) : null);

    /// <summary>The key given inline (base64), else the one in <paramref name="file"/>, else the development key at
    /// <paramref name="developmentPath"/> (created on first use); with none of them, an error saying how to make one.</summary>
    public static NetworkKey Resolve(string? key, string? file, string? developmentPath)
    {
        if (key is { Length: > 0 })
        {
            return NetworkKey.Parse(key);
        }

        if (file is { Length: > 0 })
        {
            return NetworkKey.ReadFile(file);
        }

        if (developmentPath is not null)
        {
            return NetworkKey.LoadOrCreateDevelopmentKey(developmentPath);
        }

        throw new NetworkKeyException(
            "No network key is configured. A production node needs Iris:Network:Key (base64 of 32 random bytes, e.g. from "
            + "`openssl rand -base64 32`) or Iris:Network:KeyFile (a file holding it), the same on every node of the network.");
    }

    /// <summary>Where the development key is kept: <c>Iris:Network:DevelopmentKeyFile</c>, or <c>~/.iris/network-key</c>.</summary>
    public static string DevelopmentPath(IConfiguration configuration) =>
        configuration["Iris:Network:DevelopmentKeyFile"] is { Length: > 0 } custom ? custom : NetworkKey.DefaultDevelopmentKeyPath;
}
