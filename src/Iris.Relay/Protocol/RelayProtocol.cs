namespace Iris.Relay.Protocol;

/// <summary>The constants of the relay protocol, v1.0-draft2.</summary>
internal static class RelayProtocol
{
    /// <summary>The only version this relay speaks.</summary>
    public const string Version = "v1.0-draft2";

    /// <summary>What a client's Init starts with.</summary>
    public const string ClientMagic = "iris-client-magic";

    /// <summary>What the relay's Init and Deny start with.</summary>
    public const string RelayMagic = "iris-relay-magic";

    /// <summary>Largest tunnel chunk either side sends (64 KiB): the chunk limit the relay announces.</summary>
    public const int ChunkLimit = 64 * 1024;

    /// <summary>The longest a varint may be: ten groups of seven bits hold 64.</summary>
    public const int MaxVarintBytes = 10;
}
