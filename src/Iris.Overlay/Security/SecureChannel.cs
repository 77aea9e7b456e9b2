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

/// <summary>Which kind of connection a handshake opens. Each has its own labels in the MACs and the key derivation,
/// so a handshake made for one cannot be spliced onto the other.</summary>
internal enum SecureChannelKind
{
    /// <summary>Between two overlay nodes.</summary>
    Overlay,

    /// <summary>Orleans' own connections: silo to silo, client to gateway.</summary>
    Orleans,
}

/// <summary>What a completed handshake gives a connection: a protector per direction, and an identifier that both
/// ends compute alike (from the transcript) and nobody else can predict.</summary>
internal readonly record struct HandshakeResult(FrameProtector Send, FrameProtector Receive, UInt128 ConnectionId);

/// <summary>
/// The handshake that opens every overlay connection. Each side sends a hello: protocol version, an ephemeral ECDH
/// P-256 public key and a random nonce. The responder then proves it holds the network key with an HMAC-SHA256 over
/// both hellos, and the initiator answers with its own. Only then is the ECDH secret, mixed with the network key and
/// bound to the transcript, expanded with HKDF-SHA256 into one AES-256-GCM key per direction. A peer without the key
/// learns nothing it could use: the MAC it sees covers values it chose and fresh random ones. Every label names the
/// channel (<see cref="SecureChannelKind"/>), so an overlay handshake is no good on an Orleans connection and the
/// reverse. The responder makes its ephemeral key only once the initiator's hello has arrived, so a connection that
/// sends nothing costs no key.
/// </summary>
internal static class Handshake
{
    public const byte Version = 1;
    public const int PublicKeySize = 65;
    public const int NonceSize = 16;
    public const int HelloSize = 1 + PublicKeySize + NonceSize;
    public const int MacSize = 32;

    private static readonly Labels OverlayLabels = new("iris/1 overlay");
    private static readonly Labels OrleansLabels = new("iris/1 orleans");

    /// <summary>Runs the handshake on <paramref name="stream"/> and returns the two directions' protectors.</summary>
    public static async Task<HandshakeResult> RunAsync(
        Stream stream, bool initiator, NetworkKey key, TimeSpan timeout, long rekeyAfterFrames, CancellationToken cancellationToken,
        SecureChannelKind channel = SecureChannelKind.Overlay)
    {
        var labels = channel == SecureChannelKind.Overlay ? OverlayLabels : OrleansLabels;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        ECDiffieHellman? ecdh = null;
        try
        {
            var theirs = new byte[HelloSize];
            byte[] mine;
            byte[] transcript;
            if (initiator)
            {
                ecdh = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
                mine = Hello(ecdh);
                await stream.WriteAsync(mine, deadline.Token).ConfigureAwait(false);
                await stream.ReadExactlyAsync(theirs, deadline.Token).ConfigureAwait(false);
                CheckVersion(theirs);
                transcript = [.. mine, .. theirs];
                var responderMac = new byte[MacSize];
                await stream.ReadExactlyAsync(responderMac, deadline.Token).ConfigureAwait(false);
                Verify(key, labels.Responder, transcript, responderMac, "the responder");
                await stream.WriteAsync(Mac(key, labels.Initiator, transcript), deadline.Token).ConfigureAwait(false);
            }
            else
            {
                await stream.ReadExactlyAsync(theirs, deadline.Token).ConfigureAwait(false);
                CheckVersion(theirs);
                ecdh = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
                mine = Hello(ecdh);
                transcript = [.. theirs, .. mine];
                byte[] reply = [.. mine, .. Mac(key, labels.Responder, transcript)];
                await stream.WriteAsync(reply, deadline.Token).ConfigureAwait(false);
                var initiatorMac = new byte[MacSize];
                await stream.ReadExactlyAsync(initiatorMac, deadline.Token).ConfigureAwait(false);
                Verify(key, labels.Initiator, transcript, initiatorMac, "the initiator");
            }

            var secret = SharedSecret(ecdh, theirs);
            var salt = SHA256.HashData(transcript);
            var prk = HKDF.Extract(HashAlgorithmName.SHA256, [.. secret, .. key.Bytes], salt);
            var forward = HKDF.Expand(HashAlgorithmName.SHA256, prk, 32, labels.InitiatorToResponder);
            var backward = HKDF.Expand(HashAlgorithmName.SHA256, prk, 32, labels.ResponderToInitiator);
            var id = BinaryPrimitives.ReadUInt128BigEndian(HKDF.Expand(HashAlgorithmName.SHA256, prk, 16, labels.ConnectionId));
            CryptographicOperations.ZeroMemory(secret);
            CryptographicOperations.ZeroMemory(prk);
            return initiator
                ? new(new FrameProtector(forward, rekeyAfterFrames), new FrameProtector(backward, rekeyAfterFrames), id)
                : new(new FrameProtector(backward, rekeyAfterFrames), new FrameProtector(forward, rekeyAfterFrames), id);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new OverlayAuthenticationException($"The handshake did not complete within {timeout}.");
        }
        catch (EndOfStreamException e)
        {
            throw new OverlayAuthenticationException("The peer closed the connection during the handshake (most likely it holds another network key).", e);
        }
        catch (IOException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new OverlayAuthenticationException($"The connection broke during the handshake: {e.Message}", e);
        }
        finally
        {
            ecdh?.Dispose();
        }
    }

    private sealed class Labels(string prefix)
    {
        public byte[] Responder { get; } = Encoding.ASCII.GetBytes(prefix + " responder");

        public byte[] Initiator { get; } = Encoding.ASCII.GetBytes(prefix + " initiator");

        public byte[] InitiatorToResponder { get; } = Encoding.ASCII.GetBytes(prefix + " initiator->responder");

        public byte[] ResponderToInitiator { get; } = Encoding.ASCII.GetBytes(prefix + " responder->initiator");

        public byte[] ConnectionId { get; } = Encoding.ASCII.GetBytes(prefix + " connection id");
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
            throw new OverlayAuthenticationException($"The handshake MAC of {who} is wrong: the peer holds another network key, or opened another kind of connection (overlay and Orleans connections do not mix).");
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
