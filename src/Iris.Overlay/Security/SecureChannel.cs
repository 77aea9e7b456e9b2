using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Iris.Overlay.Security;

/// <summary>
/// A connection's authentication failed or its traffic was tampered with: wrong network key, a forged, replayed,
/// reordered or truncated frame, or a handshake that broke off. The connection is closed; nothing from it is used.
/// </summary>
public sealed class OverlayAuthenticationException : Exception
{
    /// <summary>Creates the exception.</summary>
    public OverlayAuthenticationException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with its cause.</summary>
    public OverlayAuthenticationException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// The handshake that opens every overlay connection. Each side sends a hello: protocol version, an ephemeral ECDH
/// P-256 public key and a random nonce. The responder then proves it holds the network key with an HMAC-SHA256 over
/// both hellos, and the initiator answers with its own. Only then is the ECDH secret, mixed with the network key and
/// bound to the transcript, expanded with HKDF-SHA256 into one AES-256-GCM key per direction. A peer without the key
/// learns nothing it could use: the MAC it sees covers values it chose and fresh random ones.
/// </summary>
internal static class Handshake
{
    public const byte Version = 1;
    public const int PublicKeySize = 65;
    public const int NonceSize = 16;
    public const int HelloSize = 1 + PublicKeySize + NonceSize;
    public const int MacSize = 32;

    private static readonly byte[] ResponderLabel = Encoding.ASCII.GetBytes("iris/1 responder");
    private static readonly byte[] InitiatorLabel = Encoding.ASCII.GetBytes("iris/1 initiator");
    private static readonly byte[] InitiatorToResponder = Encoding.ASCII.GetBytes("iris/1 initiator->responder");
    private static readonly byte[] ResponderToInitiator = Encoding.ASCII.GetBytes("iris/1 responder->initiator");

    /// <summary>Runs the handshake on <paramref name="stream"/> and returns the two directions' protectors.</summary>
    public static async Task<(FrameProtector Send, FrameProtector Receive)> RunAsync(
        Stream stream, bool initiator, NetworkKey key, TimeSpan timeout, long rekeyAfterFrames, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            using var ecdh = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
            var mine = Hello(ecdh);
            var theirs = new byte[HelloSize];
            byte[] transcript;
            if (initiator)
            {
                await stream.WriteAsync(mine, deadline.Token).ConfigureAwait(false);
                await stream.ReadExactlyAsync(theirs, deadline.Token).ConfigureAwait(false);
                transcript = [.. mine, .. theirs];
                var responderMac = new byte[MacSize];
                await stream.ReadExactlyAsync(responderMac, deadline.Token).ConfigureAwait(false);
                Verify(key, ResponderLabel, transcript, responderMac, "the responder");
                await stream.WriteAsync(Mac(key, InitiatorLabel, transcript), deadline.Token).ConfigureAwait(false);
            }
            else
            {
                await stream.ReadExactlyAsync(theirs, deadline.Token).ConfigureAwait(false);
                CheckVersion(theirs);
                transcript = [.. theirs, .. mine];
                byte[] reply = [.. mine, .. Mac(key, ResponderLabel, transcript)];
                await stream.WriteAsync(reply, deadline.Token).ConfigureAwait(false);
                var initiatorMac = new byte[MacSize];
                await stream.ReadExactlyAsync(initiatorMac, deadline.Token).ConfigureAwait(false);
                Verify(key, InitiatorLabel, transcript, initiatorMac, "the initiator");
            }

            CheckVersion(theirs);
            var secret = SharedSecret(ecdh, theirs);
            var salt = SHA256.HashData(transcript);
            var prk = HKDF.Extract(HashAlgorithmName.SHA256, [.. secret, .. key.Bytes], salt);
            var forward = HKDF.Expand(HashAlgorithmName.SHA256, prk, 32, InitiatorToResponder);
            var backward = HKDF.Expand(HashAlgorithmName.SHA256, prk, 32, ResponderToInitiator);
            CryptographicOperations.ZeroMemory(secret);
            CryptographicOperations.ZeroMemory(prk);
            return initiator
                ? (new FrameProtector(forward, rekeyAfterFrames), new FrameProtector(backward, rekeyAfterFrames))
                : (new FrameProtector(backward, rekeyAfterFrames), new FrameProtector(forward, rekeyAfterFrames));
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new OverlayAuthenticationException($"The handshake did not complete within {timeout}.");
        }
        catch (EndOfStreamException e)
        {
            throw new OverlayAuthenticationException("The peer closed the connection during the handshake (most likely it holds another network key).", e);
        }
    }

    private static byte[] Hello(ECDiffieHellman ecdh)
    {
        var parameters = ecdh.ExportParameters(includePrivateParameters: false);
        var hello = new byte[HelloSize];
        hello[0] = Version;
        hello[1] = 0x04;
        parameters.Q.X!.CopyTo(hello, 2);
        parameters.Q.Y!.CopyTo(hello, 2 + 32);
        RandomNumberGenerator.Fill(hello.AsSpan(1 + PublicKeySize));
        return hello;
    }

    private static void CheckVersion(byte[] hello)
    {
        if (hello[0] != Version || hello[1] != 0x04)
        {
            throw new OverlayAuthenticationException($"The peer speaks handshake version {hello[0]}, not {Version}.");
        }
    }

    private static byte[] SharedSecret(ECDiffieHellman ecdh, byte[] hello)
    {
        try
        {
            using var peer = ECDiffieHellman.Create(new ECParameters
            {
                Curve = ECCurve.NamedCurves.nistP256,
                Q = new ECPoint { X = hello[2..34], Y = hello[34..66] },
            });
            return ecdh.DeriveRawSecretAgreement(peer.PublicKey);
        }
        catch (CryptographicException e)
        {
            throw new OverlayAuthenticationException("The peer's ephemeral key is not a valid P-256 point.", e);
        }
    }

    private static byte[] Mac(NetworkKey key, byte[] label, byte[] transcript) =>
        HMACSHA256.HashData(key.Bytes, [.. label, .. transcript]);

    private static void Verify(NetworkKey key, byte[] label, byte[] transcript, byte[] mac, string who)
    {
        if (!CryptographicOperations.FixedTimeEquals(Mac(key, label, transcript), mac))
        {
            throw new OverlayAuthenticationException($"The handshake MAC of {who} is wrong: the peer holds another network key.");
        }
    }
}

/// <summary>
/// AES-256-GCM for one direction of a connection. The nonce is the rekey epoch (4 bytes) and a frame counter
/// (8 bytes) that both sides keep, so it never travels and never repeats: a replayed, dropped or reordered frame
/// fails authentication. After <c>rekeyAfterFrames</c> frames both sides derive the next key with HKDF and start the
/// counter again, long before it could wrap.
/// </summary>
internal sealed class FrameProtector : IDisposable
{
    public const int TagSize = 16;

    private static readonly byte[] RekeyLabel = Encoding.ASCII.GetBytes("iris/1 rekey");

    private readonly long _rekeyAfterFrames;
    private byte[] _key;
    private AesGcm _aes;
    private uint _epoch;
    private long _counter;

    private readonly bool _plaintext;

    public FrameProtector(byte[] key, long rekeyAfterFrames)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rekeyAfterFrames, 1);
        _key = key;
        _aes = new AesGcm(key, TagSize);
        _rekeyAfterFrames = rekeyAfterFrames;
    }

    private FrameProtector()
    {
        _plaintext = true;
        _key = new byte[32];
        _aes = new AesGcm(_key, TagSize);
        _rekeyAfterFrames = long.MaxValue;
    }

    /// <summary>How many times the key has been replaced.</summary>
    public uint Epoch => _epoch;

    /// <summary>Bytes a sealed frame adds to its plaintext: the tag.</summary>
    public int Overhead => _plaintext ? 0 : TagSize;

    /// <summary>
    /// A protector that only copies: the same framing without encryption, so a benchmark can measure what
    /// encryption costs. Never used by a running node (<see cref="Transport.TcpTransportOptions"/> cannot ask for it).
    /// </summary>
    internal static FrameProtector PlaintextForBenchmarks() => new();

    /// <summary>Encrypts <paramref name="plaintext"/> into <paramref name="destination"/> (ciphertext then tag),
    /// authenticating <paramref name="header"/> too.</summary>
    public void Seal(ReadOnlySpan<byte> header, ReadOnlySpan<byte> plaintext, Span<byte> destination)
    {
        if (_plaintext)
        {
            plaintext.CopyTo(destination);
            return;
        }

        Span<byte> nonce = stackalloc byte[12];
        NextNonce(nonce);
        _aes.Encrypt(nonce, plaintext, destination[..plaintext.Length], destination.Slice(plaintext.Length, TagSize), header);
    }

    /// <summary>Decrypts a frame sealed by the other side's <see cref="Seal"/>.</summary>
    public void Open(ReadOnlySpan<byte> header, ReadOnlySpan<byte> sealedFrame, Span<byte> plaintext)
    {
        if (_plaintext)
        {
            sealedFrame.CopyTo(plaintext);
            return;
        }

        if (sealedFrame.Length < TagSize)
        {
            throw new OverlayAuthenticationException($"A frame of {sealedFrame.Length} bytes is shorter than its authentication tag.");
        }

        Span<byte> nonce = stackalloc byte[12];
        NextNonce(nonce);
        var length = sealedFrame.Length - TagSize;
        try
        {
            _aes.Decrypt(nonce, sealedFrame[..length], sealedFrame[length..], plaintext[..length], header);
        }
        catch (AuthenticationTagMismatchException e)
        {
            throw new OverlayAuthenticationException("A frame failed authentication: it was altered, replayed, reordered or sealed with another key.", e);
        }
    }

    public void Dispose()
    {
        _aes.Dispose();
        CryptographicOperations.ZeroMemory(_key);
    }

    private void NextNonce(Span<byte> nonce)
    {
        if (_counter == _rekeyAfterFrames)
        {
            var next = HKDF.Expand(HashAlgorithmName.SHA256, _key, 32, RekeyLabel);
            _aes.Dispose();
            CryptographicOperations.ZeroMemory(_key);
            _key = next;
            _aes = new AesGcm(next, TagSize);
            _epoch++;
            _counter = 0;
        }

        BinaryPrimitives.WriteUInt32BigEndian(nonce, _epoch);
        BinaryPrimitives.WriteInt64BigEndian(nonce[4..], _counter++);
    }
}
