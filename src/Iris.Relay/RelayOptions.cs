namespace Iris.Relay;

/// <summary>
/// The relay endpoint of a silo, for applications written with the Iris client libraries (Go, Java, Erlang, …). Bound
/// from the <c>Iris:Relay</c> configuration section; checked at start-up.
/// </summary>
public sealed class RelayOptions
{
    /// <summary>Configuration section of the options.</summary>
    public const string SectionName = "Iris:Relay";

    /// <summary>The port the Iris client libraries connect to.</summary>
    public const int DefaultPort = 55555;

    /// <summary>Whether the silo serves the relay protocol. Default true.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// The address the endpoint listens on. Default 127.0.0.1: only processes on this machine connect, as the client
    /// libraries expect. Any other address lets every process that reaches it use the network with this silo's
    /// rights, without a key: bind elsewhere only on a network you trust that much.
    /// </summary>
    public string Address { get; set; } = "127.0.0.1";

    /// <summary>The port; null for <see cref="DefaultPort"/> when it is free (a second node on the machine then runs
    /// without a relay endpoint and says so). A port set here must be free, or the silo does not start.</summary>
    public int? Port { get; set; }

    /// <summary>Largest request, reply, broadcast or event a client may send, in bytes. Default 64 MiB.</summary>
    public int MaxMessageBytes { get; set; } = 64 * 1024 * 1024;

    /// <summary>Largest cluster or topic name (and fault string) in bytes. Default 4 KiB.</summary>
    public int MaxNameBytes { get; set; } = 4 * 1024;

    /// <summary>Bytes each connection may hold queued in each direction. A client that falls this far behind reading
    /// what is pushed at it (requests, broadcasts, events) loses its connection with a Close saying so; what it sends
    /// waits for room. Default 128 MiB.</summary>
    public long MaxQueuedBytes { get; set; } = 128L * 1024 * 1024;

    /// <summary>Requests one client may have in flight; past it the connection is closed. Default 10,000.</summary>
    public int MaxPendingRequests { get; set; } = 10_000;

    /// <summary>Tunnels one client may have open or opening; past it the connection is closed. Default 1,000.</summary>
    public int MaxTunnels { get; set; } = 1_000;

    /// <summary>Requests the silo hands a member connection at once; the client library applies its own thread and
    /// memory limits behind it. Default 256.</summary>
    public int MemberConcurrency { get; set; } = 256;

    /// <summary>Buffer the relay grants a client per tunnel, in bytes. Default 4 MiB.</summary>
    public int TunnelBufferBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>How long a member's client has to confirm an incoming tunnel. Default 3 s.</summary>
    public TimeSpan TunnelConfirmTimeout { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>How long a new connection has to send its Init. Default 10 s.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);
}
