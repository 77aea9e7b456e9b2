using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Iris.Calls;

/// <summary>
/// Ids of requests, broadcasts and publications: 8 bytes drawn once per process from the operating system's
/// cryptographic generator, then a counter. Member hosts tell a repeat from a new request by its id alone, so ids must
/// never repeat across processes while a host remembers them; two processes share ids only if their 64-bit prefixes
/// are equal, which is as unlikely as a random <see cref="Guid"/> colliding, and a process never repeats its counter.
/// An id costs an increment, where <see cref="Guid.NewGuid"/> asks the operating system for randomness each time.
/// </summary>
internal static class CallIds
{
    private static readonly ulong Prefix = BinaryPrimitives.ReadUInt64LittleEndian(RandomNumberGenerator.GetBytes(sizeof(ulong)));
    private static long _counter;

    /// <summary>A new id, never given before by any process (see <see cref="CallIds"/>).</summary>
    public static Guid Next()
    {
        Span<byte> bytes = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, Prefix);
        BinaryPrimitives.WriteInt64LittleEndian(bytes[8..], Interlocked.Increment(ref _counter));
        return new Guid(bytes);
    }
}
