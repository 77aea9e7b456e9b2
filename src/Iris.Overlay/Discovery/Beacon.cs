using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Iris.Overlay.Security;
using Iris.Overlay.Transport;

namespace Iris.Overlay.Discovery;

/// <summary>
/// A discovery beacon: "IRIS", version 2, the node's key, whether it is in a ring yet, when it was sent (Unix
/// milliseconds on the sender's clock), a random nonce, its TCP overlay address, the Orleans gateway it offers to
/// clients (may be empty), and the first 16 bytes of an HMAC-SHA256 over all that under the network key. A beacon
/// from another network fails the MAC and is ignored; the time and the nonce, being under the MAC, let a
/// <see cref="BeaconFilter"/> refuse a captured beacon played again.
/// </summary>
internal readonly record struct Beacon(NodeHandle Node, bool Ready, string Gateway, long SentUnixMs, ulong Nonce)
{
    /// <summary>The largest datagram a beacon can be.</summary>
    public const int MaxSize = HeaderSize + 1 + NodeAddress.MaxLength + 1 + MaxGatewayLength + MacSize;

    private const byte Version = 2;
    private const int MacSize = 16;
    private const int HeaderSize = 4 + 1 + NodeKey.Size + 1 + 8 + 8;
    private const int MaxGatewayLength = 255;
    private static readonly byte[] Magic = "IRIS"u8.ToArray();
    private static readonly byte[] Label = Encoding.ASCII.GetBytes("iris/2 beacon");
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>A beacon stamped now with a fresh nonce.</summary>
    public static Beacon Create(NodeHandle node, bool ready, string gateway, TimeProvider time) =>
        new(node, ready, gateway, time.GetUtcNow().ToUnixTimeMilliseconds(), BinaryPrimitives.ReadUInt64LittleEndian(RandomNumberGenerator.GetBytes(8)));

    public byte[] Encode(NetworkKey key)
    {
        var address = Encoding.UTF8.GetBytes(Node.Address.Value);
        var gateway = Encoding.UTF8.GetBytes(Gateway ?? string.Empty);
        if (address.Length > NodeAddress.MaxLength || gateway.Length > MaxGatewayLength)
        {
            throw new ArgumentException($"A beacon carries an address of at most {NodeAddress.MaxLength} bytes and a gateway of at most {MaxGatewayLength}.");
        }

        var body = new byte[HeaderSize + 1 + address.Length + 1 + gateway.Length];
        var span = body.AsSpan();
        Magic.CopyTo(span);
        span[4] = Version;
        Node.Key.Write(span.Slice(5, NodeKey.Size));
        span[21] = Ready ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteInt64BigEndian(span[22..], SentUnixMs);
        BinaryPrimitives.WriteUInt64BigEndian(span[30..], Nonce);
        span[HeaderSize] = (byte)address.Length;
        address.CopyTo(span[(HeaderSize + 1)..]);
        span[HeaderSize + 1 + address.Length] = (byte)gateway.Length;
        gateway.CopyTo(span[(HeaderSize + 2 + address.Length)..]);
        return [.. body, .. Mac(key, body)];
    }

    /// <summary>Reads a beacon; null when it is malformed or MACed with another key. Never throws, allocates nothing
    /// before the MAC has been checked.</summary>
    public static Beacon? TryDecode(ReadOnlySpan<byte> datagram, NetworkKey key)
    {
        if (datagram.Length < HeaderSize + 2 + MacSize || datagram.Length > MaxSize || !datagram[..4].SequenceEqual(Magic) || datagram[4] != Version)
        {
            return null;
        }

        var body = datagram[..^MacSize];
        var addressLength = body[HeaderSize];
        if (addressLength == 0 || body.Length < HeaderSize + 2 + addressLength || body.Length != HeaderSize + 2 + addressLength + body[HeaderSize + 1 + addressLength]
            || body[21] > 1 || !CryptographicOperations.FixedTimeEquals(Mac(key, body), datagram[^MacSize..]))
        {
            return null;
        }

        try
        {
            var address = new NodeAddress(StrictUtf8.GetString(body.Slice(HeaderSize + 1, addressLength)));
            var gateway = StrictUtf8.GetString(body[(HeaderSize + 2 + addressLength)..]);
            var node = new NodeHandle(NodeKey.Read(body.Slice(5, NodeKey.Size)), address);
            return new Beacon(node, body[21] == 1, gateway, BinaryPrimitives.ReadInt64BigEndian(body[22..]), BinaryPrimitives.ReadUInt64BigEndian(body[30..]));
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    private static byte[] Mac(NetworkKey key, ReadOnlySpan<byte> body)
    {
        Span<byte> full = stackalloc byte[32];
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, key.Bytes);
        hmac.AppendData(Label);
        hmac.AppendData(body);
        hmac.GetHashAndReset(full);
        return full[..MacSize].ToArray();
    }
}

/// <summary>What a <see cref="BeaconFilter"/> made of a datagram.</summary>
internal enum BeaconVerdict
{
    /// <summary>A valid, fresh beacon seen for the first time.</summary>
    Accepted,

    /// <summary>Malformed, or MACed with another network's key.</summary>
    Foreign,

    /// <summary>Sent further from the receiver's clock than <see cref="DiscoveryOptions.BeaconFreshness"/>: an old
    /// capture played again, or a sender whose clock is far off.</summary>
    Stale,

    /// <summary>Not newer than a beacon already accepted from the same node: a replay, or a datagram the network
    /// delivered twice or late.</summary>
    Repeated,
}

/// <summary>
/// Decides which beacons to believe: valid under the network key, sent within the freshness window of this
/// process's clock, and newer than the last one accepted from the same node. A keyless host can only play back
/// beacons it captured: older than the window they are stale; within it, each is accepted at most once and never
/// after a newer one from that node. Thread-safe; keeps one entry per node heard within the window.
/// </summary>
internal sealed class BeaconFilter(NetworkKey key, TimeSpan freshness, TimeProvider time)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<NodeKey, (long SentUnixMs, ulong Nonce)> _latest = [];
    private long _foreign;
    private long _stale;
    private long _repeated;
    private long _nextPruneMs;

    /// <summary>Datagrams that were not beacons of this network.</summary>
    public long Foreign => Interlocked.Read(ref _foreign);

    /// <summary>Beacons refused for their age.</summary>
    public long Stale => Interlocked.Read(ref _stale);

    /// <summary>Beacons refused as played again.</summary>
    public long Repeated => Interlocked.Read(ref _repeated);

    public BeaconVerdict Check(ReadOnlySpan<byte> datagram, out Beacon beacon)
    {
        if (Beacon.TryDecode(datagram, key) is not { } decoded)
        {
            beacon = default;
            Interlocked.Increment(ref _foreign);
            return BeaconVerdict.Foreign;
        }

        beacon = decoded;
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var window = (long)freshness.TotalMilliseconds;
        if (Int128.Abs((Int128)now - decoded.SentUnixMs) > window)
        {
            Interlocked.Increment(ref _stale);
            return BeaconVerdict.Stale;
        }

        lock (_lock)
        {
            if (_latest.TryGetValue(decoded.Node.Key, out var last)
                && (decoded.SentUnixMs < last.SentUnixMs || (decoded.SentUnixMs == last.SentUnixMs && decoded.Nonce == last.Nonce)))
            {
                Interlocked.Increment(ref _repeated);
                return BeaconVerdict.Repeated;
            }

            _latest[decoded.Node.Key] = (decoded.SentUnixMs, decoded.Nonce);
            if (now >= _nextPruneMs)
            {
                // A node not heard within the window needs no entry: anything it sent before is stale by now.
                _nextPruneMs = now + window;
                foreach (var (node, seen) in _latest)
                {
                    if (now - seen.SentUnixMs > window)
                    {
                        _latest.Remove(node);
                    }
                }
            }
        }

        return BeaconVerdict.Accepted;
    }
}
