using System.Net;
using System.Net.Sockets;

namespace Iris.Hosting;

/// <summary>Finds loopback ports for a development silo: the configured defaults when free, any free port else.</summary>
internal static class PortPicker
{
    public static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public static int AnyFree()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>The port to use: <paramref name="port"/> if it was set explicitly or is free, a free one otherwise.</summary>
    public static int Choose(int port, bool explicitlySet) => explicitlySet || IsFree(port) ? port : AnyFree();
}
