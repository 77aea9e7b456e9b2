namespace Iris.Relay.Protocol;

/// <summary>The first byte of every relay message. Most opcodes name one operation in both directions, with different
/// fields each way (see <see cref="RelayReader"/> and <see cref="RelayWriter"/>).</summary>
internal enum RelayOpcode : byte
{
    /// <summary>Client: connection initiation. Relay: connection accepted.</summary>
    Init = 0x00,

    /// <summary>Relay only: connection refused, with a reason.</summary>
    Deny = 0x01,

    /// <summary>Client: graceful tear-down. Relay: tear-down, with a reason (empty when graceful).</summary>
    Close = 0x02,

    /// <summary>Client: broadcast to a cluster. Relay: a broadcast for the member.</summary>
    Broadcast = 0x03,

    /// <summary>Client: a request to a cluster. Relay: a request for the member.</summary>
    Request = 0x04,

    /// <summary>Client: a member's reply. Relay: the reply to the client's request.</summary>
    Reply = 0x05,

    /// <summary>Client only: subscribe to a topic.</summary>
    Subscribe = 0x06,

    /// <summary>Client only: unsubscribe from a topic.</summary>
    Unsubscribe = 0x07,

    /// <summary>Client: publish on a topic. Relay: an event for a subscriber.</summary>
    Publish = 0x08,

    /// <summary>Client: open a tunnel to a cluster. Relay: an incoming tunnel for the member.</summary>
    TunnelInit = 0x09,

    /// <summary>Client: accept an incoming tunnel. Relay: the result of the client's tunnel opening.</summary>
    TunnelConfirm = 0x0a,

    /// <summary>Both: more buffer space granted to the other side, in bytes.</summary>
    TunnelAllowance = 0x0b,

    /// <summary>Both: a chunk of a tunnel message.</summary>
    TunnelTransfer = 0x0c,

    /// <summary>Client: close a tunnel. Relay: a tunnel closed, with a reason (empty when graceful).</summary>
    TunnelClose = 0x0d,
}
