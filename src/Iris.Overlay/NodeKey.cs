using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Iris.Overlay;

/// <summary>
/// A 128-bit identifier on the Pastry ring: the key of a node, or the hash of a name.
/// Keys are read as 32 base-16 digits, most significant first; the ring wraps at 2^128.
/// </summary>
public readonly record struct NodeKey(UInt128 Value) : IComparable<NodeKey>
{
    /// <summary>Bits per digit (Pastry's b). Base 16.</summary>
    public const int BitsPerDigit = 4;

    /// <summary>Number of distinct digit values (2^b).</summary>
    public const int Base = 1 << BitsPerDigit;

    /// <summary>Number of digits in a key (128 / b).</summary>
    public const int DigitCount = 128 / BitsPerDigit;

    /// <summary>Size of the key in bytes.</summary>
    public const int Size = 16;

    /// <summary>The largest possible distance between two keys on the ring: half the ring.</summary>
    public static readonly UInt128 HalfRing = UInt128.One << 127;

    /// <summary>The key zero.</summary>
    public static NodeKey Zero => default;

    /// <summary>Hashes a name to its key: SHA-256 of its UTF-8 bytes, truncated to the first 128 bits (big-endian).</summary>
    public static NodeKey FromName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var byteCount = Encoding.UTF8.GetByteCount(name);
        var buffer = byteCount <= 256 ? stackalloc byte[byteCount] : new byte[byteCount];
        Encoding.UTF8.GetBytes(name, buffer);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(buffer, hash);
        return Read(hash);
    }

    /// <summary>A uniformly random key drawn from <paramref name="random"/> (seedable, for simulation).</summary>
    public static NodeKey Random(Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        Span<byte> bytes = stackalloc byte[Size];
        random.NextBytes(bytes);
        return Read(bytes);
    }

    /// <summary>A key from a cryptographically strong random source, for a node's persisted identity.</summary>
    public static NodeKey NewRandom()
    {
        Span<byte> bytes = stackalloc byte[Size];
        RandomNumberGenerator.Fill(bytes);
        return Read(bytes);
    }

    /// <summary>Reads a key from 16 big-endian bytes.</summary>
    public static NodeKey Read(ReadOnlySpan<byte> bytes) => new(BinaryPrimitives.ReadUInt128BigEndian(bytes));

    /// <summary>Writes the key as 16 big-endian bytes.</summary>
    public void Write(Span<byte> destination) => BinaryPrimitives.WriteUInt128BigEndian(destination, Value);

    /// <summary>The digit at <paramref name="index"/> (0 is the most significant).</summary>
    public int Digit(int index)
    {
        if ((uint)index >= DigitCount)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, $"A key has {DigitCount} digits.");
        }

        return (int)((Value >> ((DigitCount - 1 - index) * BitsPerDigit)) & (Base - 1));
    }

    /// <summary>Number of leading digits this key shares with <paramref name="other"/> (32 when equal).</summary>
    public int SharedPrefixLength(NodeKey other)
    {
        var diff = Value ^ other.Value;
        return diff == UInt128.Zero ? DigitCount : (int)UInt128.LeadingZeroCount(diff) / BitsPerDigit;
    }

    /// <summary>Distance going clockwise (increasing values, wrapping) from this key to <paramref name="other"/>.</summary>
    public UInt128 ClockwiseDistance(NodeKey other) => unchecked(other.Value - Value);

    /// <summary>Distance on the ring: the shorter way round, at most 2^127.</summary>
    public UInt128 RingDistance(NodeKey other)
    {
        var cw = unchecked(other.Value - Value);
        var ccw = unchecked(Value - other.Value);
        return cw < ccw ? cw : ccw;
    }

    /// <summary>
    /// Whether <paramref name="a"/> is strictly closer to this key than <paramref name="b"/>. The rule that decides the
    /// root of a key: the smaller ring distance wins; on an exact tie, the candidate reached going clockwise from the key
    /// (the one whose clockwise distance is smaller) wins, so every node agrees on one root.
    /// </summary>
    public bool IsCloser(NodeKey a, NodeKey b)
    {
        var da = RingDistance(a);
        var db = RingDistance(b);
        if (da != db)
        {
            return da < db;
        }

        return ClockwiseDistance(a) < ClockwiseDistance(b);
    }

    /// <inheritdoc />
    public int CompareTo(NodeKey other) => Value.CompareTo(other.Value);

    /// <summary>Parses 32 hexadecimal digits.</summary>
    public static NodeKey Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (!TryParse(text, out var key))
        {
            throw new FormatException($"'{text}' is not a node key: expected {DigitCount} hexadecimal digits.");
        }

        return key;
    }

    /// <summary>Tries to parse 32 hexadecimal digits.</summary>
    public static bool TryParse(string? text, out NodeKey key)
    {
        key = default;
        if (text is null || text.Length != DigitCount)
        {
            return false;
        }

        if (!UInt128.TryParse(text, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var value))
        {
            return false;
        }

        key = new NodeKey(value);
        return true;
    }

    /// <summary>32 lower-case hexadecimal digits.</summary>
    public override string ToString() => Value.ToString("x32", CultureInfo.InvariantCulture);

    /// <summary>The first eight digits, for logs.</summary>
    public string ToShortString() => ToString()[..8];

    /// <inheritdoc />
    public override int GetHashCode() => ((ulong)Value ^ (ulong)(Value >> 64)).GetHashCode();

    /// <summary>Compares key values.</summary>
    public static bool operator <(NodeKey left, NodeKey right) => left.Value < right.Value;

    /// <summary>Compares key values.</summary>
    public static bool operator >(NodeKey left, NodeKey right) => left.Value > right.Value;

    /// <summary>Compares key values.</summary>
    public static bool operator <=(NodeKey left, NodeKey right) => left.Value <= right.Value;

    /// <summary>Compares key values.</summary>
    public static bool operator >=(NodeKey left, NodeKey right) => left.Value >= right.Value;

}
