using System.Net;
using Iris.Overlay.Hosting;
using Microsoft.Extensions.Configuration;

namespace Iris.Hosting;

/// <summary>The address of <see cref="IrisSiloOptions.Address"/>, with its default.</summary>
internal static class SiloEndpointAddress
{
    /// <summary><see cref="IrisSiloOptions.Address"/> when set, else the overlay's address
    /// (<c>Iris:Overlay:ListenAddress</c>, else the rule of <see cref="HostAddress"/>).</summary>
    public static IPAddress For(IrisSiloOptions options, IConfiguration configuration, bool development) =>
        !string.IsNullOrWhiteSpace(options.Address)
            ? HostAddress.Resolve(options.Address, development, IrisSiloOptions.AddressSetting)
            : HostAddress.Resolve(configuration[OverlayHost.ListenAddressSetting], development, OverlayHost.ListenAddressSetting);
}
