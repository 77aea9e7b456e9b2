namespace Iris.Overlay.Transport;

/// <summary>
/// Where a node can be reached, as understood by its transport: <c>tcp://127.0.0.1:11111</c> for TCP,
/// <c>mem://42</c> for the in-memory network. Opaque to the ring.
/// </summary>
public readonly record struct NodeAddress
{
    /// <summary>The longest address the wire format carries, in UTF-8 bytes.</summary>
    public const int MaxLength = 255;

    /// <summary>Creates an address from its text form.</summary>
    public NodeAddress(string value)
    {
        ArgumentException.ThrowIfNullOrEmpty(value);
        if (System.Text.Encoding.UTF8.GetByteCount(value) > MaxLength)
        {
            throw new ArgumentException($"A node address is at most {MaxLength} UTF-8 bytes; '{value[..32]}…' is longer.", nameof(value));
        }

        Value = value;
    }

    /// <summary>The text form of the address.</summary>
    public string Value { get; }

    /// <summary>Whether this is the default, empty address.</summary>
    public bool IsEmpty => Value is null;

    /// <inheritdoc />
    public override string ToString() => Value ?? "(none)";
}
