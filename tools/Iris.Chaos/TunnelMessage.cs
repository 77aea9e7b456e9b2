using System.Buffers.Binary;

namespace Iris.Chaos;

/// <summary>A tunnel message of the run: a sequence number and a hash of it (16 bytes), so a receiver can tell a
/// corrupted message from a lost, repeated or reordered one.</summary>
internal static class TunnelMessage
{
    public const int Length = 16;

    public static byte[] Create(long sequence)
    {
        var message = new byte[Length];
        BinaryPrimitives.WriteInt64LittleEndian(message, sequence);
        BinaryPrimitives.WriteUInt64LittleEndian(message.AsSpan(8), Hash(sequence));
        return message;
    }

    /// <summary>The sequence number, or null when the message is not one this run sent intact.</summary>
    public static long? Read(ReadOnlySpan<byte> message)
    {
        if (message.Length != Length)
        {
            return null;
        }

        var sequence = BinaryPrimitives.ReadInt64LittleEndian(message);
        return BinaryPrimitives.ReadUInt64LittleEndian(message[8..]) == Hash(sequence) ? sequence : null;
    }

    // MurmurHash3's 64-bit finalizer: every input bit changes about half the output bits.
    private static ulong Hash(long sequence)
    {
        var x = (ulong)sequence;
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdUL;
        x ^= x >> 33;
        x *= 0xc4ceb9fe1a85ec53UL;
        x ^= x >> 33;
        return x;
    }
}
