using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Iris.Overlay.Security;

namespace Iris.Overlay.Transport;

/// <summary>
/// One authenticated, encrypted TCP connection between two overlay nodes. Wire format after the handshake: frames
/// of a 4-byte big-endian length and that many bytes of AES-GCM output (ciphertext and tag), the length being
/// authenticated as associated data. A frame's plaintext is a kind byte and a body: the link hello (the sender's
/// listening address, first frame in each direction) or one overlay message.
/// </summary>
internal sealed class TcpLink : IAsyncDisposable
{
    private const byte HelloKind = 0;
    private const byte MessageKind = 1;
    private const int HeaderSize = 4;

    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly PipeReader _reader;
    private readonly PipeWriter _writer;
    private readonly FrameProtector _send;
    private readonly FrameProtector _receive;
    private readonly int _maxSealed;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly CancellationTokenSource _closed = new();
    private readonly ArrayBufferWriter<byte> _scratch = new(256);
    private int _closing;

    private TcpLink(Socket socket, NetworkStream stream, FrameProtector send, FrameProtector receive, int maxFrameSize, bool initiated)
    {
        _socket = socket;
        _stream = stream;
        _send = send;
        _receive = receive;
        _maxSealed = maxFrameSize + 1 + send.Overhead;
        Initiated = initiated;
        _reader = PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true));
        _writer = PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true));
    }

    /// <summary>Whether this side opened the connection.</summary>
    public bool Initiated { get; }

    /// <summary>The listening address of the other side, from its hello.</summary>
    public NodeAddress Remote { get; private set; }

    /// <summary>The listening address of the side that opened the connection: both ends agree on it, so both keep
    /// the same link when two were opened at once.</summary>
    public NodeAddress InitiatorAddress { get; private set; }

    public bool IsClosed => Volatile.Read(ref _closing) != 0;

    public EndPoint? RemoteEndPoint => _socket.RemoteEndPoint;

    public static async Task<TcpLink> ConnectAsync(NodeAddress local, NodeAddress remote, NetworkKey key, TcpTransportOptions options, CancellationToken cancellationToken)
    {
        var endpoint = ParseEndPoint(remote);
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            using (var connect = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                connect.CancelAfter(options.ConnectTimeout);
                await socket.ConnectAsync(endpoint, connect.Token).ConfigureAwait(false);
            }

            var stream = new NetworkStream(socket, ownsSocket: false);
            var (send, receive) = await Handshake.RunAsync(stream, initiator: true, key, options.HandshakeTimeout, options.RekeyAfterFrames, cancellationToken).ConfigureAwait(false);
            (send, receive) = Protectors(options, send, receive);
            var link = new TcpLink(socket, stream, send, receive, options.MaxFrameSize, initiated: true) { InitiatorAddress = local };
            await link.WriteHelloAsync(local, cancellationToken).ConfigureAwait(false);
            link.Remote = await link.ReadHelloAsync(options.HandshakeTimeout, cancellationToken).ConfigureAwait(false);
            return link;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public static async Task<TcpLink> AcceptAsync(Socket socket, NodeAddress local, NetworkKey key, TcpTransportOptions options, CancellationToken cancellationToken)
    {
        socket.NoDelay = true;
        var stream = new NetworkStream(socket, ownsSocket: false);
        var (send, receive) = await Handshake.RunAsync(stream, initiator: false, key, options.HandshakeTimeout, options.RekeyAfterFrames, cancellationToken).ConfigureAwait(false);
        (send, receive) = Protectors(options, send, receive);
        var link = new TcpLink(socket, stream, send, receive, options.MaxFrameSize, initiated: false);
        link.Remote = await link.ReadHelloAsync(options.HandshakeTimeout, cancellationToken).ConfigureAwait(false);
        link.InitiatorAddress = link.Remote;
        await link.WriteHelloAsync(local, cancellationToken).ConfigureAwait(false);
        return link;
    }

    private static (FrameProtector, FrameProtector) Protectors(TcpTransportOptions options, FrameProtector send, FrameProtector receive)
    {
        if (!options.PlaintextForBenchmarks)
        {
            return (send, receive);
        }

        send.Dispose();
        receive.Dispose();
        return (FrameProtector.PlaintextForBenchmarks(), FrameProtector.PlaintextForBenchmarks());
    }

    public static IPEndPoint ParseEndPoint(NodeAddress address)
    {
        const string Scheme = "tcp://";
        var text = address.Value;
        if (text is null || !text.StartsWith(Scheme, StringComparison.Ordinal) || !IPEndPoint.TryParse(text[Scheme.Length..], out var endpoint) || endpoint.Port == 0)
        {
            throw new FormatException($"'{text}' is not a TCP overlay address: expected tcp://<ip>:<port>.");
        }

        return endpoint;
    }

    /// <summary>Reads frames until the connection ends, handing each overlay message to <paramref name="deliver"/>.
    /// Returns why it ended; throws nothing.</summary>
    public async Task<(string Reason, bool Error)> ReadLoopAsync(Action<OverlayMessage> deliver)
    {
        try
        {
            while (true)
            {
                var result = await _reader.ReadAsync(_closed.Token).ConfigureAwait(false);
                var buffer = result.Buffer;
                while (TryReadFrame(ref buffer, out var kind, out var body, out var owner))
                {
                    try
                    {
                        if (kind != MessageKind)
                        {
                            throw new OverlayProtocolException($"Unexpected link frame of kind {kind} after the hello.");
                        }

                        deliver(MessageCodec.Read(body.Span));
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(owner);
                    }
                }

                _reader.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted)
                {
                    return buffer.IsEmpty ? ("the peer closed the connection", false) : ($"the connection ended inside a frame ({buffer.Length} bytes left)", true);
                }
            }
        }
        catch (OperationCanceledException)
        {
            return ("closed locally", false);
        }
        catch (Exception e) when (e is OverlayProtocolException or OverlayAuthenticationException)
        {
            return (e.Message, true);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            return ($"connection lost: {e.Message}", false);
        }
        finally
        {
            await DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Seals and writes a batch of messages, then flushes. Returns the messages refused for exceeding the
    /// frame limit; the others are written.</summary>
    public async ValueTask<int> WriteAsync(IReadOnlyList<OverlayMessage> messages, CancellationToken cancellationToken)
    {
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        var refused = 0;
        try
        {
            foreach (var message in messages)
            {
                _scratch.Clear();
                _scratch.GetSpan(1)[0] = MessageKind;
                _scratch.Advance(1);
                MessageCodec.Write(_scratch, message);
                if (_scratch.WrittenCount + _send.Overhead > _maxSealed)
                {
                    refused++;
                    continue;
                }

                WriteFrame(_scratch.WrittenSpan);
            }

            var flush = await _writer.FlushAsync(cancellationToken).ConfigureAwait(false);
            if (flush.IsCanceled || flush.IsCompleted)
            {
                throw new IOException("The connection is closed.");
            }

            return refused;
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _closing, 1) != 0)
        {
            return;
        }

        try
        {
            await _writeLock.WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
            await _writer.CompleteAsync().ConfigureAwait(false);
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
            // Already broken: nothing left to flush.
        }

        await _closed.CancelAsync().ConfigureAwait(false);
        _socket.Dispose();
        _send.Dispose();
        _receive.Dispose();
    }

    private void WriteFrame(ReadOnlySpan<byte> plaintext)
    {
        var sealedLength = plaintext.Length + _send.Overhead;
        if (sealedLength > _maxSealed)
        {
            throw new OverlayProtocolException($"An overlay message of {plaintext.Length - 1} bytes exceeds the frame limit of {_maxSealed - 1 - _send.Overhead} bytes.");
        }

        var span = _writer.GetSpan(HeaderSize + sealedLength);
        BinaryPrimitives.WriteInt32BigEndian(span, sealedLength);
        _send.Seal(span[..HeaderSize], plaintext, span.Slice(HeaderSize, sealedLength));
        _writer.Advance(HeaderSize + sealedLength);
    }

    private bool TryReadFrame(ref ReadOnlySequence<byte> buffer, out byte kind, out ReadOnlyMemory<byte> body, out byte[] owner)
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
        if (length < 1 + _receive.Overhead || length > _maxSealed)
        {
            throw new OverlayProtocolException($"A frame of {length} bytes is outside the allowed {1 + _receive.Overhead}..{_maxSealed} bytes.");
        }

        if (buffer.Length < HeaderSize + length)
        {
            return false;
        }

        var sealedFrame = ArrayPool<byte>.Shared.Rent(length);
        owner = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            buffer.Slice(HeaderSize, length).CopyTo(sealedFrame);
            _receive.Open(header, sealedFrame.AsSpan(0, length), owner);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(owner);
            throw;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(sealedFrame);
        }

        buffer = buffer.Slice(HeaderSize + length);
        kind = owner[0];
        body = owner.AsMemory(1, length - _receive.Overhead - 1);
        return true;
    }

    private async ValueTask WriteHelloAsync(NodeAddress local, CancellationToken cancellationToken)
    {
        var address = Encoding.UTF8.GetBytes(local.Value);
        WriteFrame([HelloKind, .. address]);
        await _writer.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<NodeAddress> ReadHelloAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            while (true)
            {
                var result = await _reader.ReadAsync(deadline.Token).ConfigureAwait(false);
                var buffer = result.Buffer;
                if (TryReadFrame(ref buffer, out var kind, out var body, out var owner))
                {
                    try
                    {
                        _reader.AdvanceTo(buffer.Start);
                        if (kind != HelloKind || body.Length is 0 or > NodeAddress.MaxLength)
                        {
                            throw new OverlayProtocolException("The first frame of a connection must be its hello with the peer's address.");
                        }

                        var address = new NodeAddress(Encoding.UTF8.GetString(body.Span));
                        ParseEndPoint(address);
                        return address;
                    }
                    catch (FormatException e)
                    {
                        throw new OverlayProtocolException($"The peer announced an invalid address: {e.Message}");
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(owner);
                    }
                }

                _reader.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted)
                {
                    throw new OverlayAuthenticationException("The peer closed the connection before its hello.");
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new OverlayAuthenticationException($"The peer sent no hello within {timeout}.");
        }
    }
}
