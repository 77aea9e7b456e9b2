namespace Iris.Relay.Protocol;

/// <summary>One message from the relay to its client, made by the factory for its opcode and written by
/// <see cref="RelayWriter"/>.</summary>
internal readonly struct RelayOut
{
    private RelayOut(RelayOpcode op, ulong id = 0, ulong value = 0, string? text = null, ReadOnlyMemory<byte> data = default, bool timedOut = false, bool success = false)
    {
        Op = op;
        Id = id;
        Value = value;
        Text = text;
        Data = data;
        TimedOut = timedOut;
        Success = success;
    }

    public RelayOpcode Op { get; }

    public ulong Id { get; }

    public ulong Value { get; }

    public string? Text { get; }

    public ReadOnlyMemory<byte> Data { get; }

    public bool TimedOut { get; }

    public bool Success { get; }

    /// <summary>Bytes this message holds in a connection's queue, near enough for its limit.</summary>
    public int Cost => 32 + Data.Length + (Text is null ? 0 : 3 * Text.Length);

    public static RelayOut Accept() => new(RelayOpcode.Init);

    public static RelayOut Deny(string reason) => new(RelayOpcode.Deny, text: reason);

    public static RelayOut Close(string reason) => new(RelayOpcode.Close, text: reason);

    public static RelayOut Broadcast(ReadOnlyMemory<byte> message) => new(RelayOpcode.Broadcast, data: message);

    public static RelayOut Request(ulong id, ReadOnlyMemory<byte> request, ulong timeoutMs) => new(RelayOpcode.Request, id, timeoutMs, data: request);

    public static RelayOut Replied(ulong id, ReadOnlyMemory<byte> reply) => new(RelayOpcode.Reply, id, data: reply, success: true);

    public static RelayOut Faulted(ulong id, string fault) => new(RelayOpcode.Reply, id, text: fault);

    public static RelayOut ReplyTimedOut(ulong id) => new(RelayOpcode.Reply, id, timedOut: true);

    public static RelayOut Publish(string topic, ReadOnlyMemory<byte> message) => new(RelayOpcode.Publish, text: topic, data: message);

    public static RelayOut TunnelInit(ulong buildId, ulong chunkLimit) => new(RelayOpcode.TunnelInit, buildId, chunkLimit);

    public static RelayOut TunnelOpened(ulong id, ulong chunkLimit) => new(RelayOpcode.TunnelConfirm, id, chunkLimit);

    public static RelayOut TunnelTimedOut(ulong id) => new(RelayOpcode.TunnelConfirm, id, timedOut: true);

    public static RelayOut TunnelAllowance(ulong id, ulong bytes) => new(RelayOpcode.TunnelAllowance, id, bytes);

    public static RelayOut TunnelTransfer(ulong id, ulong size, ReadOnlyMemory<byte> payload) => new(RelayOpcode.TunnelTransfer, id, size, data: payload);

    public static RelayOut TunnelClose(ulong id, string reason) => new(RelayOpcode.TunnelClose, id, text: reason);
}
