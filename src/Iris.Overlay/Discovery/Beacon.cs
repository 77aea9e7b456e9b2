using System.Security.Cryptography;
using System.Text;
using Iris.Overlay.Security;
using Iris.Overlay.Transport;

namespace Iris.Overlay.Discovery;

/// <summary>
/// A discovery beacon: "IRIS", version 1, the node's key, whether it is in a ring yet, its TCP overlay address, the
/// Orleans gateway it offers to clients (may be empty), and the first 16 bytes of an HMAC-SHA256 over all that under
/// the network key. A beacon from another network fails the MAC and is ignored.
/// </summary>
internal readonly record struct Beacon(NodeHandle Node, bool Ready, string Gateway = "")
{
    private const int MacSize = 16;
    private static readonly byte[] Magic = "IRIS"u8.ToArray();
    private static readonly byte[] Label = Encoding.ASCII.GetBytes("iris/1 beacon");

    public byte[] Encode(NetworkKey key)
    {
        var address = Encoding.UTF8.GetBytes(Node.Address.Value);
        var gateway = Encoding.UTF8.GetBytes(Gateway ?? string.Empty);
        var body = new byte[Magic.Length + 1 + NodeKey.Size + 1 + 1 + address.Length + 1 + gateway.Length];
        Magic.CopyTo(body, 0);
        body[4] = 1;
        Node.Key.Write(body.AsSpan(5, NodeKey.Size));
        body[21] = Ready ? (byte)1 : (byte)0;
        body[22] = (byte)address.Length;
        address.CopyTo(body, 23);
        body[23 + address.Length] = (byte)gateway.Length;
        gateway.CopyTo(body, 24 + address.Length);
        return [.. body, .. Mac(key, body)];
    }

    /// <summary>Reads a beacon; null when it is malformed or MACed with another key.</summary>
    public static Beacon? TryDecode(ReadOnlySpan<byte> datagram, NetworkKey key)
    {
        if (datagram.Length < 23 + MacSize || !datagram[..4].SequenceEqual(Magic) || datagram[4] != 1)
        {
            return null;
        }

        var body = datagram[..^MacSize];
        var addressLength = body[22];
        if (body.Length < 24 + addressLength || body.Length != 24 + addressLength + body[23 + addressLength]
            || !CryptographicOperations.FixedTimeEquals(Mac(key, body), datagram[^MacSize..]))
        {
            return null;
        }

        try
        {
            var address = new NodeAddress(Encoding.UTF8.GetString(body.Slice(23, addressLength)));
            var gateway = Encoding.UTF8.GetString(body[(24 + addressLength)..]);
            return new Beacon(new NodeHandle(NodeKey.Read(body.Slice(5, NodeKey.Size)), address), body[21] == 1, gateway);
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    private static byte[] Mac(NetworkKey key, ReadOnlySpan<byte> body)
    {
        Span<byte> full = stackalloc byte[32];
        HMACSHA256.HashData(key.Bytes, [.. Label, .. body], full);
        return full[..MacSize].ToArray();
    }
}
