namespace Iris.Hosting;

/// <summary>Limits of the tunnels a process opens and serves. Bound from the <c>Iris:Tunnels</c> configuration
/// section in silos; set on <see cref="IrisClientOptions.Tunnels"/> in Orleans clients.</summary>
public sealed class TunnelOptions
{
    /// <summary>Configuration section of the options in a silo.</summary>
    public const string SectionName = "Iris:Tunnels";

    /// <summary>Messages are carried in chunks of at most this many bytes (64 KiB).</summary>
    public const int ChunkBytes = 64 * 1024;

    /// <summary>Bytes a sender may be ahead of this side's receiving application, per tunnel: the receive buffer of a
    /// tunnel holds at most this much, plus one large message being reassembled. Default 4 MiB, at least 128 KiB.</summary>
    public int WindowBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>Largest message sent or accepted, in bytes. Default 16 MiB.</summary>
    public int MaxMessageBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>How often each process checks that the processes at the other ends of its tunnels are alive.
    /// Default 2 s.</summary>
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How long a keep-alive check may take before it counts as missed; three missed in a row close the
    /// peer's tunnels with <see cref="TunnelCloseReason.PeerDied"/>. Default 4 s.</summary>
    public TimeSpan KeepAliveTimeout { get; set; } = TimeSpan.FromSeconds(4);

    /// <summary>Throws when a value is out of range.</summary>
    public void Validate()
    {
        if (WindowBytes < 2 * ChunkBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(WindowBytes), WindowBytes, $"The tunnel window must be at least {2 * ChunkBytes} bytes.");
        }

        if (MaxMessageBytes < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxMessageBytes), MaxMessageBytes, "The maximum tunnel message size must be positive.");
        }

        if (KeepAliveInterval <= TimeSpan.Zero || KeepAliveTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(KeepAliveInterval), "Tunnel keep-alive interval and timeout must be positive.");
        }
    }
}
