using Microsoft.Extensions.Options;

namespace Iris.Overlay.Transport;

/// <summary>Settings of the TCP overlay transport. Bound from <c>Iris:Overlay:Tcp</c>.</summary>
public sealed class TcpTransportOptions
{
    /// <summary>Largest overlay message a frame may carry, in bytes: a bigger message is refused before it is sent, a
    /// bigger frame received ends its connection. Default 16 MiB.</summary>
    public int MaxFrameSize { get; set; } = 16 * 1024 * 1024;

    /// <summary>Messages queued per peer while its connection is busy or being made; beyond this <c>Send</c> drops
    /// (the ring retransmits) and <c>SendAsync</c> waits. Default 4096.</summary>
    public int OutboundQueueCapacity { get; set; } = 4096;

    /// <summary>How long a connection may take to complete its handshake. Default 5 seconds.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a connection attempt may take. Default 5 seconds.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>First wait before connecting again to a peer that could not be reached; doubles up to
    /// <see cref="ReconnectMaxDelay"/>. Default 100 ms.</summary>
    public TimeSpan ReconnectMinDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Longest wait between connection attempts. Default 5 seconds.</summary>
    public TimeSpan ReconnectMaxDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Frames sent under one key before both sides move to the next. Default 2^32.</summary>
    public long RekeyAfterFrames { get; set; } = 1L << 32;

    /// <summary>Accepted connections that may be in their handshake at once; more are closed at once. Default 256.</summary>
    public int MaxHandshakesInProgress { get; set; } = 256;

    /// <summary>Accepted connections from one IP address that may be in their handshake at once. Default 16.</summary>
    public int MaxHandshakesPerAddress { get; set; } = 16;

    /// <summary>
    /// How long data written on a connection may stay unacknowledged by the peer before the connection is given up
    /// (TCP_USER_TIMEOUT, on Linux). Without it a connection cut by a partition stays open while TCP's retransmission
    /// backoff grows, to a minute and more, and after the network heals everything sent to that peer waits behind it.
    /// Zero leaves the system's default (retrying for many minutes). Default 10 seconds.
    /// </summary>
    public TimeSpan UnacknowledgedTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a remote address with no connection and no traffic keeps its queue and send loop before they
    /// are freed. Default 1 minute.</summary>
    public TimeSpan IdlePeerTimeout { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How long shutting down waits for queued messages to be written. Default 2 seconds.</summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Frames without encryption after the handshake: only for the benchmark that measures what encryption
    /// costs. Internal, so configuration cannot turn it on.</summary>
    internal bool PlaintextForBenchmarks { get; set; }
}

/// <summary>Checks <see cref="TcpTransportOptions"/> at start-up.</summary>
public sealed class TcpTransportOptionsValidator : IValidateOptions<TcpTransportOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, TcpTransportOptions options)
    {
        var errors = new List<string>();
        if (options.MaxFrameSize is < 1024 or > MessageCodec.MaxPayload + 65536)
        {
            errors.Add($"Tcp MaxFrameSize must be from 1 KiB to {MessageCodec.MaxPayload + 65536} bytes; it is {options.MaxFrameSize}.");
        }

        if (options.OutboundQueueCapacity < 1)
        {
            errors.Add($"Tcp OutboundQueueCapacity must be at least 1; it is {options.OutboundQueueCapacity}.");
        }

        if (options.HandshakeTimeout <= TimeSpan.Zero || options.ConnectTimeout <= TimeSpan.Zero || options.ShutdownTimeout < TimeSpan.Zero)
        {
            errors.Add("Tcp HandshakeTimeout and ConnectTimeout must be positive, ShutdownTimeout not negative.");
        }

        if (options.ReconnectMinDelay <= TimeSpan.Zero || options.ReconnectMaxDelay < options.ReconnectMinDelay)
        {
            errors.Add("Tcp ReconnectMinDelay must be positive and at most ReconnectMaxDelay.");
        }

        if (options.MaxHandshakesInProgress < 1 || options.MaxHandshakesPerAddress < 1)
        {
            errors.Add("Tcp MaxHandshakesInProgress and MaxHandshakesPerAddress must be at least 1.");
        }

        if (options.UnacknowledgedTimeout < TimeSpan.Zero || options.UnacknowledgedTimeout > TimeSpan.FromMilliseconds(int.MaxValue))
        {
            errors.Add($"Tcp UnacknowledgedTimeout must be zero (the system's default) or positive; it is {options.UnacknowledgedTimeout}.");
        }

        if (options.IdlePeerTimeout <= TimeSpan.Zero)
        {
            errors.Add($"Tcp IdlePeerTimeout must be positive; it is {options.IdlePeerTimeout}.");
        }

        if (options.RekeyAfterFrames < 1)
        {
            errors.Add($"Tcp RekeyAfterFrames must be at least 1; it is {options.RekeyAfterFrames}.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
