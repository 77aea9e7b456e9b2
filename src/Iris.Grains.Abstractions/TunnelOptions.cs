namespace Iris;

/// <summary>Limits of the tunnels a process opens and serves. Bound from the <c>Iris:Tunnels</c> configuration
/// section in silos and <c>Iris:Client:Tunnels</c> in Orleans clients; checked at start-up.</summary>
public sealed class TunnelOptions
{
    /// <summary>Configuration section of the options in a silo.</summary>
    public const string SectionName = "Iris:Tunnels";

    /// <summary>Configuration section of the options in an Orleans client.</summary>
    public const string ClientSectionName = "Iris:Client:Tunnels";

    /// <summary>Messages are carried in chunks of at most this many bytes (64 KiB).</summary>
    public const int ChunkBytes = 64 * 1024;

    /// <summary>Bytes a sender may be ahead of this side's receiving application, per tunnel, each message chunk
    /// counting 64 bytes more than its length (what holding it costs beyond its bytes): the receive buffer of a tunnel
    /// holds at most this much, plus one large message being reassembled. Default 4 MiB, at least 128 KiB.</summary>
    public int WindowBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>Largest message sent or accepted, in bytes. Default 16 MiB.</summary>
    public int MaxMessageBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>How often each process checks that the processes at the other ends of its tunnels are alive.
    /// Default 2 s.</summary>
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How long a keep-alive check may take before it counts as missed; three missed in a row close the
    /// peer's tunnels with <see cref="TunnelCloseReason.PeerDied"/>. Default 4 s.</summary>
    public TimeSpan KeepAliveTimeout { get; set; } = TimeSpan.FromSeconds(4);
}
