using System.Buffers;
using System.Buffers.Binary;
using Iris.Overlay.Security;

namespace Iris.Overlay.Transport;

/// <summary>
/// Reading the frames of a <see cref="TcpLink"/>: a 4-byte big-endian length, then that many bytes of AES-GCM output
/// (ciphertext and tag) with the length as associated data. Apart from the link so that it can be tested, and fuzzed,
/// without sockets.
/// </summary>
internal static class LinkFrames
{
    /// <summary>The bytes of a frame's length.</summary>
    public const int HeaderSize = 4;

    /// <summary>
    /// Takes one whole frame off <paramref name="buffer"/> and opens it into a pooled buffer (<paramref name="owner"/>,
    /// to be returned by the caller). The declared length is checked before anything is allocated, so a huge
    /// length costs nothing; a frame held in one segment is opened in place, without a copy. Returns false, leaving
    /// <paramref name="buffer"/> as it was, while the frame is incomplete; throws <see cref="OverlayProtocolException"/>
    /// on a length outside 1 + overhead..<paramref name="maxSealed"/> and <see cref="OverlayAuthenticationException"/>
    /// on a frame that fails authentication.
    /// </summary>
    public static bool TryRead(ref ReadOnlySequence<byte> buffer, FrameProtector receive, int maxSealed, out byte kind, out ReadOnlyMemory<byte> body, out byte[] owner)
    {
        kind = 0;
        body = default;
        owner = [];
        if (buffer.Length < HeaderSize)
        {
            return false;
        }

        Span<byte> header = stackalloc byte[HeaderSize];
        buffer.Slice(0, HeaderSize).CopyTo(header);
        var length = BinaryPrimitives.ReadInt32BigEndian(header);
        if (length < 1 + receive.Overhead || length > maxSealed)
        {
            throw new OverlayProtocolException($"A frame of {length} bytes is outside the allowed {1 + receive.Overhead}..{maxSealed} bytes.");
        }

        if (buffer.Length < HeaderSize + length)
        {
            return false;
        }

        var sealedFrame = buffer.Slice(HeaderSize, length);
        owner = ArrayPool<byte>.Shared.Rent(length);
        byte[]? copy = null;
        try
        {
            ReadOnlySpan<byte> sealedSpan;
            if (sealedFrame.IsSingleSegment)
            {
                sealedSpan = sealedFrame.FirstSpan;
            }
            else
            {
                copy = ArrayPool<byte>.Shared.Rent(length);
                sealedFrame.CopyTo(copy);
                sealedSpan = copy.AsSpan(0, length);
            }

            receive.Open(header, sealedSpan, owner);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(owner);
            owner = [];
            throw;
        }
        finally
        {
            if (copy is not null)
            {
                ArrayPool<byte>.Shared.Return(copy);
            }
        }

        buffer = buffer.Slice(HeaderSize + length);
        kind = owner[0];
        body = owner.AsMemory(1, length - receive.Overhead - 1);
        return true;
    }
}
