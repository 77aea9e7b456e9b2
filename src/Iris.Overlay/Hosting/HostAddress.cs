using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;

namespace Iris.Overlay.Hosting;

/// <summary>
/// The address a node listens on and advertises when none is configured: loopback in development, else the first
/// IPv4 address of an interface that is up and not loopback. The overlay and the Orleans silo of a node share it, so
/// both are reached at the same address.
/// </summary>
internal static class HostAddress
{
    /// <summary><paramref name="configured"/> (the value of <paramref name="setting"/>) when given, else the default
    /// above. Throws <see cref="FormatException"/> naming the setting when the value is not an IP address, and
    /// <see cref="InvalidOperationException"/> when there is no default to take.</summary>
    public static IPAddress Resolve(string? configured, bool development, string setting)
    {
        if (configured is { Length: > 0 } text)
        {
            return TryParse(text, out var address)
                ? address
                : throw new FormatException($"{setting} '{text}' is not an IP address.");
        }

        return development ? IPAddress.Loopback : FirstUpIPv4() ?? throw new InvalidOperationException(
            $"No IPv4 interface is up to listen on: set {setting}.");
    }

    /// <summary>Parses an IP address written in full: IPv4 as four dotted numbers (the shorter forms such as
    /// <c>10.0.0</c>, which mean something else than they seem, are refused), or IPv6.</summary>
    public static bool TryParse(string text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IPAddress? address)
    {
        text = text.Trim();
        if (!IPAddress.TryParse(text, out address)
            || (address.AddressFamily == AddressFamily.InterNetwork && text.Count(c => c == '.') != 3))
        {
            address = null;
            return false;
        }

        return true;
    }

    /// <summary>The first IPv4 address of a network interface that is up and not loopback; null when there is none.</summary>
    public static IPAddress? FirstUpIPv4()
    {
        foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
        {
            if (nic.OperationalStatus == OperationalStatus.Up && nic.NetworkInterfaceType != NetworkInterfaceType.Loopback)
            {
                foreach (var unicast in nic.GetIPProperties().UnicastAddresses)
                {
                    if (unicast.Address.AddressFamily == AddressFamily.InterNetwork)
                    {
                        return unicast.Address;
                    }
                }
            }
        }

        return null;
    }
}
