using System.Buffers.Binary;
using CsCheck;

namespace Iris.Tests.Fuzz;

/// <summary>One change to an encoding; its numbers are reduced modulo the sizes they index when applied.</summary>
internal readonly record struct Mutation(MutationKind Type, uint A, uint B, uint C);

/// <summary>What a <see cref="Mutation"/> does.</summary>
internal enum MutationKind
{
    FlipBit,
    ReplaceByte,
    Truncate,
    Extend,
    Splice,
    HugeLength,
    HugeCount,
    Insert,
    Delete,
    Repeat,
    HugeLengthField,
}

/// <summary>A valid value, its encoding, and that encoding after one to four <see cref="Mutation"/>s; a splice takes
/// its second half from <see cref="Other"/>, another valid encoding.</summary>
internal sealed record Mutated<T>(T Value, byte[] Original, byte[] Bytes, Mutation[] Mutations, byte[]? Other)
{
    /// <summary>Whether the mutations happened to leave the encoding as it was.</summary>
    public bool Unchanged => Original.AsSpan().SequenceEqual(Bytes);

    /// <summary>Whether a splice happened to give the other valid encoding whole.</summary>
    public bool IsOther => Other is not null && Other.AsSpan().SequenceEqual(Bytes);

    /// <summary>The first index where <see cref="Bytes"/> differ from <see cref="Original"/>: the shorter length when
    /// one is a prefix of the other, and the original's length when nothing changed.</summary>
    public int FirstDifference => Original.AsSpan().CommonPrefixLength(Bytes);

    public override string ToString() =>
        $"{Value} original {Convert.ToHexString(Original)} mutated {Convert.ToHexString(Bytes)} by {string.Join(", ", Mutations)}";
}

/// <summary>Hostile variations of valid encodings: bit flips, replaced bytes, truncation, extension, splices of two
/// encodings, lengths and counts set to huge values, inserted, deleted and repeated runs.</summary>
internal static class Mutations
{
    private static readonly byte[] InterestingBytes = [0x00, 0x01, 0x02, 0x7F, 0x80, 0xFE, 0xFF];

    private static readonly uint[] HugeLengths =
        [0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0x01000000, 0x01000001, 0x00FFFFFF, 0x0100_0400, 0x0000FFFF, 0x00010000];

    private static readonly ushort[] HugeCounts = [0xFFFF, 0x8000, 0x7FFF, 0x0201, 0x0200, 0x01FF, 0x0100];

    public static readonly Gen<Mutation> Any =
        Gen.Select(Gen.Enum<MutationKind>(), Gen.UInt, Gen.UInt, Gen.UInt, (kind, a, b, c) => new Mutation(kind, a, b, c));

    /// <summary>Random datagrams: short, long, and ones that start like <paramref name="prefix"/> so they get past a
    /// magic number.</summary>
    public static Gen<byte[]> Random(int maxLength, byte[]? prefix = null) =>
        prefix is null
            ? Gen.Byte.Array[0, maxLength]
            : Gen.Select(Gen.Bool, Gen.Byte.Array[0, maxLength], (prefixed, bytes) => prefixed ? [.. prefix, .. bytes] : bytes);

    /// <summary>Values from <paramref name="valid"/>, encoded and mutated one to four times; a splice takes its second
    /// half from another encoding of <paramref name="valid"/>. <paramref name="lengthFields"/>, when given, names the
    /// offsets of 4-byte big-endian length fields in an encoding, for <see cref="MutationKind.HugeLengthField"/>.</summary>
    public static Gen<Mutated<T>> Of<T>(Gen<T> valid, Func<T, byte[]> encode, Func<T, byte[], int[]>? lengthFields = null) =>
        Gen.Select(valid, valid, Any.Array[1, 4], (value, other, mutations) =>
        {
            var original = encode(value);
            var fields = lengthFields?.Invoke(value, original) ?? [];
            var bytes = original;
            byte[]? otherEncoding = null;
            foreach (var mutation in mutations)
            {
                bytes = Apply(bytes, mutation, fields, () => otherEncoding ??= encode(other));
            }

            return new Mutated<T>(value, original, bytes, mutations, otherEncoding);
        });

    public static byte[] Apply(byte[] input, Mutation mutation, int[] lengthFields, Func<byte[]> other)
    {
        var bytes = input.ToArray();
        var length = bytes.Length;
        var at = length == 0 ? 0 : (int)(mutation.A % (uint)length);
        switch (mutation.Type)
        {
            case MutationKind.FlipBit when length > 0:
                bytes[at] ^= (byte)(1 << (int)(mutation.B % 8));
                return bytes;
            case MutationKind.ReplaceByte when length > 0:
                bytes[at] = mutation.C % 2 == 0 ? InterestingBytes[mutation.B % InterestingBytes.Length] : (byte)mutation.B;
                return bytes;
            case MutationKind.Truncate:
                return bytes[..at];
            case MutationKind.Splice:
                var second = other();
                return [.. bytes.AsSpan(0, (int)(mutation.A % (uint)(length + 1))), .. second.AsSpan((int)(mutation.B % (uint)(second.Length + 1)))];
            case MutationKind.HugeLength when length > 0:
                WriteClipped(bytes, at, HugeLengths[mutation.B % HugeLengths.Length]);
                return bytes;
            case MutationKind.HugeLengthField when lengthFields.Length > 0:
                WriteClipped(bytes, lengthFields[mutation.A % (uint)lengthFields.Length], HugeLengths[mutation.B % HugeLengths.Length]);
                return bytes;
            case MutationKind.HugeCount when length > 1:
                BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(Math.Min(at, length - 2)), HugeCounts[mutation.B % HugeCounts.Length]);
                return bytes;
            case MutationKind.Insert:
                return [.. bytes.AsSpan(0, at), .. Noise(mutation.B % 8 + 1, mutation.C), .. bytes.AsSpan(at)];
            case MutationKind.Delete when length > 0:
                return [.. bytes.AsSpan(0, at), .. bytes.AsSpan(Math.Min(length, at + (int)(mutation.B % 8) + 1))];
            case MutationKind.Repeat when length > 0:
                var end = Math.Min(length, at + (int)(mutation.B % 64) + 1);
                var to = (int)(mutation.C % (uint)(length + 1));
                return [.. bytes.AsSpan(0, to), .. bytes.AsSpan(at, end - at), .. bytes.AsSpan(to)];
            default:
                // Extend, and whatever cannot apply to an encoding this short.
                return [.. bytes, .. Noise(mutation.B % 32 + 1, mutation.C)];
        }
    }

    /// <summary>Writes <paramref name="value"/> big-endian at <paramref name="offset"/>, as much as fits.</summary>
    private static void WriteClipped(byte[] bytes, int offset, uint value)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(word, value);
        for (var i = 0; i < 4 && offset + i < bytes.Length; i++)
        {
            bytes[offset + i] = word[i];
        }
    }

    private static byte[] Noise(uint count, uint seed)
    {
        var noise = new byte[count];
        new System.Random((int)seed).NextBytes(noise);
        return noise;
    }
}
