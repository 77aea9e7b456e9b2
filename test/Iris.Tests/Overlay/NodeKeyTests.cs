using CsCheck;
using Iris.Overlay;

namespace Iris.Tests.Overlay;

public class NodeKeyTests
{
    private static readonly Gen<NodeKey> Key = Generators.Key;

    // Keys that share long prefixes, so prefix arithmetic is exercised beyond the first digit.
    private static readonly Gen<(NodeKey, NodeKey)> NearbyPair =
        Gen.Select(Key, Gen.Int[0, 127], Gen.ULong, (a, bits, noise) =>
        {
            var mask = bits == 0 ? UInt128.Zero : (UInt128.MaxValue >> (128 - bits));
            return (a, new NodeKey((a.Value & ~mask) | (new UInt128(noise, noise * 31) & mask)));
        });

    [Fact]
    public void Names_hash_to_the_first_128_bits_of_their_sha256()
    {
        // SHA-256("abc") = ba7816bf 8f01cfea 414140de 5dae2223 b00361a3 ...
        Assert.Equal("ba7816bf8f01cfea414140de5dae2223", NodeKey.FromName("abc").ToString());
        Assert.Equal(NodeKey.FromName("orders"), NodeKey.FromName("orders"));
        Assert.NotEqual(NodeKey.FromName("orders"), NodeKey.FromName("Orders"));
    }

    [Fact]
    public void Ring_distance_is_symmetric_at_most_half_the_ring_and_zero_only_for_equal_keys() =>
        Gen.Select(Key, Key).Sample((a, b) =>
        {
            var d = a.RingDistance(b);
            return d == b.RingDistance(a) && d <= NodeKey.HalfRing && (d == UInt128.Zero) == (a == b);
        });

    [Fact]
    public void Clockwise_distances_both_ways_add_up_to_the_whole_ring() =>
        Gen.Select(Key, Key).Sample((a, b) =>
        {
            var there = a.ClockwiseDistance(b);
            var back = b.ClockwiseDistance(a);
            return unchecked(there + back) == UInt128.Zero && a.RingDistance(b) == UInt128.Min(there, back);
        });

    [Fact]
    public void Shared_prefix_length_counts_equal_leading_digits() =>
        NearbyPair.Sample(pair =>
        {
            var (a, b) = pair;
            var expected = 0;
            while (expected < NodeKey.DigitCount && a.Digit(expected) == b.Digit(expected))
            {
                expected++;
            }

            return a.SharedPrefixLength(b) == expected && b.SharedPrefixLength(a) == expected;
        });

    [Fact]
    public void Digits_rebuild_the_key() =>
        Key.Sample(key =>
        {
            var value = UInt128.Zero;
            for (var i = 0; i < NodeKey.DigitCount; i++)
            {
                var digit = key.Digit(i);
                if (digit is < 0 or >= NodeKey.Base)
                {
                    return false;
                }

                value = (value << NodeKey.BitsPerDigit) | (UInt128)digit;
            }

            return value == key.Value;
        });

    [Fact]
    public void Bytes_and_text_round_trip() =>
        Key.Sample(key =>
        {
            Span<byte> bytes = stackalloc byte[NodeKey.Size];
            key.Write(bytes);
            return NodeKey.Read(bytes) == key && NodeKey.Parse(key.ToString()) == key && key.ToString().Length == 32;
        });

    [Fact]
    public void Closeness_is_a_strict_total_order_around_any_key() =>
        Gen.Select(Key, Key, Key).Sample((key, a, b) =>
        {
            if (a == b)
            {
                return !key.IsCloser(a, b);
            }

            return key.IsCloser(a, b) ^ key.IsCloser(b, a);
        });

    [Fact]
    public void Closeness_ties_go_to_the_clockwise_candidate()
    {
        var key = new NodeKey(100);
        Assert.True(key.IsCloser(new NodeKey(110), new NodeKey(90)));
        Assert.False(key.IsCloser(new NodeKey(90), new NodeKey(110)));
        Assert.True(key.IsCloser(new NodeKey(95), new NodeKey(110)));
    }

    [Fact]
    public void Malformed_text_is_rejected_with_a_clear_message()
    {
        Assert.False(NodeKey.TryParse("xyz", out _));
        Assert.False(NodeKey.TryParse(new string('g', 32), out _));
        var error = Assert.Throws<FormatException>(() => NodeKey.Parse("12"));
        Assert.Contains("32 hexadecimal digits", error.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => NodeKey.Zero.Digit(32));
    }
}
