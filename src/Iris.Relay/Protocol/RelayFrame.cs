namespace Iris.Relay.Protocol;

/// <summary>
/// One message from a client, as read. Which fields are set depends on <see cref="Op"/>:
/// Init: <see cref="Name"/> = magic, <see cref="Text"/> = version, <see cref="Cluster"/> = cluster (empty for a plain client);
/// Broadcast: <see cref="Cluster"/>, <see cref="Data"/>;
/// Request: <see cref="Id"/>, <see cref="Cluster"/>, <see cref="Data"/>, <see cref="Value"/> = timeout in ms;
/// Reply: <see cref="Id"/>, <see cref="Flag"/> = success, then <see cref="Data"/> or <see cref="Text"/> = fault;
/// Subscribe, Unsubscribe: <see cref="Cluster"/> = topic; Publish: <see cref="Cluster"/> = topic, <see cref="Data"/>;
/// TunnelInit: <see cref="Id"/>, <see cref="Cluster"/>, <see cref="Value"/> = timeout in ms;
/// TunnelConfirm: <see cref="Id"/> = build id, <see cref="Value"/> = tunnel id;
/// TunnelAllowance: <see cref="Id"/>, <see cref="Value"/> = bytes;
/// TunnelTransfer: <see cref="Id"/>, <see cref="Value"/> = size (0 on continuation chunks), <see cref="Data"/> = payload;
/// TunnelClose: <see cref="Id"/>; Close: nothing.
/// </summary>
internal readonly record struct RelayFrame(RelayOpcode Op)
{
    public ulong Id { get; init; }

    public ulong Value { get; init; }

    public bool Flag { get; init; }

    public string Cluster { get; init; } = string.Empty;

    public string? Name { get; init; }

    public string? Text { get; init; }

    public byte[] Data { get; init; } = [];
}
