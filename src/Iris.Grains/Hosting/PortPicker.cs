using System.Net;
using System.Net.Sockets;

namespace Iris.Hosting;

/// <summary>Finds ports for a development silo: the configured defaults when free, any free port else.</summary>
internal static class PortPicker
{
    public static bool IsFree(int port) => IsFree(IPAddress.Loopback, port);

    public static bool IsFree(IPAddress address, int port)
    {
        try
        {
            using var listener = new TcpListener(address, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public static int AnyFree() => AnyFree(IPAddress.Loopback);

    public static int AnyFree(IPAddress address)
    {
        using var listener = new TcpListener(address, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>The port to use on <paramref name="address"/>: <paramref name="port"/> if it was set explicitly or is
    /// free, a free one otherwise.</summary>
    public static int Choose(IPAddress address, int port, bool explicitlySet) => explicitlySet || IsFree(address, port) ? port : AnyFree(address);
}
