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

    /// <summary>Where picked ports come from: below the operating system's ephemeral range, where it takes the
    /// local ports of outgoing connections. A port the system handed out as free (bind to port 0) comes from that range,
    /// and any connection opened before the silo binds it may take it as its own local port ("address already in
    /// use"); below the range only another listener can, and a listener bound meanwhile fails the check.</summary>
    private const int LowestPicked = 10000;

    private static readonly Lock Gate = new();

    /// <summary>The next port to try below the ephemeral range: picked ports go up from a point set by the process id,
    /// so processes on one machine start apart, and a process hands out each port once per round of the range.</summary>
    private static int _next = -1;

    public static int AnyFree() => AnyFree(IPAddress.Loopback);

    /// <summary>A port free on <paramref name="address"/> now, outside the ephemeral range where the system has one
    /// (see <see cref="LowestPicked"/>), and not the same again in this process before it has gone round the range.</summary>
    public static int AnyFree(IPAddress address)
    {
        var below = EphemeralRangeStart();
        if (below > LowestPicked + 1000)
        {
            lock (Gate)
            {
                var span = below - LowestPicked;
                if (_next < 0)
                {
                    _next = (int)((uint)Environment.ProcessId * 7919u % (uint)span);
                }

                for (var attempt = 0; attempt < 200; attempt++)
                {
                    var port = LowestPicked + (_next++ % span);
                    if (IsFree(address, port))
                    {
                        return port;
                    }
                }
            }
        }

        using var listener = new TcpListener(address, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>The first port of the ephemeral range (Linux: /proc/sys/net/ipv4/ip_local_port_range; elsewhere the
    /// IANA range, 49152, which Windows and macOS use).</summary>
    private static int EphemeralRangeStart()
    {
        const string linuxRange = "/proc/sys/net/ipv4/ip_local_port_range";
        try
        {
            if (OperatingSystem.IsLinux() && File.Exists(linuxRange)
                && int.TryParse(File.ReadAllText(linuxRange).Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries)[0], out var start))
            {
                return start;
            }
        }
        catch (IOException)
        {
        }

        return 49152;
    }

    /// <summary>The port to use on <paramref name="address"/>: <paramref name="port"/> if it was set explicitly, or is
    /// free and no other development silo of this machine has claimed it; a free one otherwise.</summary>
    public static int Choose(IPAddress address, int port, bool explicitlySet) =>
        explicitlySet || (IsFree(address, port) && TryClaim(address, port)) ? port : AnyFree(address);

    /// <summary>Claims of default ports this process holds, by address and port: kept for the life of the process.</summary>
    private static readonly Dictionary<string, FileStream> Claims = [];

    /// <summary>
    /// Claims <paramref name="port"/> among the development silos of this machine, with a lock on a file named after it
    /// (the lock ends with the process). Two silos that start at the same instant both find a default port free, and
    /// both can bind it: Orleans listens with address reuse, which on Linux lets a second listener share the port. The
    /// claim makes the second one look further. A silo restarted in the same process keeps its claim.
    /// </summary>
    private static bool TryClaim(IPAddress address, int port)
    {
        var name = $"{address}-{port}".Replace(':', '_');
        lock (Claims)
        {
            if (Claims.ContainsKey(name))
            {
                return true;
            }

            try
            {
                var folder = Path.Combine(Path.GetTempPath(), "iris-port-claims");
                Directory.CreateDirectory(folder);
                Claims[name] = new FileStream(Path.Combine(folder, name + ".lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                return true;
            }
            catch (IOException)
            {
                return false;
            }
            catch (UnauthorizedAccessException)
            {
                // No place for claims: the port check alone decides, as before.
                return true;
            }
        }
    }
}
