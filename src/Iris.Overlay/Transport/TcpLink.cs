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
/// listening address, first frame in each direction), one overlay message, a goodbye (the sender writes nothing
/// more on this connection), or a hand-over note (what follows comes after everything sent on the named earlier
/// connection, which the reader finishes first).
/// </summary>
/// <remarks>
/// One writer at a time, by construction: the hello is written before the link is shared, and afterwards only the
/// owning peer's send loop writes. So no lock guards writing and closing never waits for a writer: it cancels and
/// shuts the socket, and a write in progress fails with an I/O error.
/// </remarks>
internal sealed class TcpLink : IAsyncDisposable
{
    private const byte HelloKind = 0;
    private const byte MessageKind = 1;
    private const byte GoodbyeKind = 2;
    private const byte ContinuesKind = 3;
    private const int HeaderSize = 4;
    private const int ConnectionIdSize = 16;
    private const int ScratchKept = 1024 * 1024;
    private const int FlushEvery = 256 * 1024;

    private readonly Socket _socket;
    private readonly PipeReader _reader;
    private readonly PipeWriter _writer;
    private readonly FrameProtector _send;
    private readonly FrameProtector _receive;
    private readonly int _maxFrameSize;
    private readonly int _maxSealed;
    private readonly CancellationTokenSource _closed;
    private readonly CancellationToken _closedToken;
    private ArrayBufferWriter<byte> _scratch = new(256);
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _closing;
    private long _bytesRead;
    private readonly AddressCache _addresses = new();

    private TcpLink(Socket socket, NetworkStream stream, HandshakeResult handshake, int maxFrameSize, bool initiated)
    {
        _socket = socket;
        _send = handshake.Send;
        _receive = handshake.Receive;
        Id = handshake.ConnectionId;
        _maxFrameSize = maxFrameSize;
        _maxSealed = maxFrameSize + 1 + _send.Overhead;
        Initiated = initiated;
        _closed = new CancellationTokenSource();
        _closedToken = _closed.Token;
        _reader = PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true));
        _writer = PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true));
    }

    /// <summary>Whether this side opened the connection.</summary>
    public bool Initiated { get; }

    /// <summary>The connection's identifier, the same at both ends.</summary>
    public UInt128 Id { get; }

    /// <summary>The listening address of the other side, from its hello.</summary>
    public NodeAddress Remote { get; private set; }

    /// <summary>The listening address of the side that opened the connection: both ends agree on it, so both keep
    /// the same link when two were opened at once.</summary>
    public NodeAddress InitiatorAddress { get; private set; }

    public bool IsClosed => Volatile.Read(ref _closing) != 0;

    /// <summary>Whether this side has written its goodbye.</summary>
    public bool GoodbyeSent { get; private set; }

    /// <summary>Bytes that have arrived on the connection since reading began (whole frames or not).</summary>
    public long BytesRead => Volatile.Read(ref _bytesRead);

    /// <summary>Completes when reading has ended: the other side's goodbye, the end of the connection, or an error.</summary>
    public Task Drained => _drained.Task;

    public EndPoint? RemoteEndPoint => _socket.RemoteEndPoint;

    public static async Task<TcpLink> ConnectAsync(NodeAddress local, NodeAddress remote, NetworkKey key, TcpTransportOptions options, CancellationToken cancellationToken)
    {
        var endpoint = ParseEndPoint(remote);
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        Configure(socket, options);
        TcpLink? link = null;
        try
        {
            using (var connect = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                connect.CancelAfter(options.ConnectTimeout);
                await socket.ConnectAsync(endpoint, connect.Token).ConfigureAwait(false);
            }

            var stream = new NetworkStream(socket, ownsSocket: false);
            var handshake = await Handshake.RunAsync(stream, initiator: true, key, options.HandshakeTimeout, options.RekeyAfterFrames, cancellationToken).ConfigureAwait(false);
            link = new TcpLink(socket, stream, Protectors(options, handshake), options.MaxFrameSize, initiated: true) { InitiatorAddress = local };
            await link.WriteHelloAsync(local, cancellationToken).ConfigureAwait(false);
            link.Remote = await link.ReadHelloAsync(options.HandshakeTimeout, cancellationToken).ConfigureAwait(false);
            return link;
        }
        catch
        {
            if (link is not null)
            {
                await link.DisposeAsync().ConfigureAwait(false);
            }

            socket.Dispose();
            throw;
        }
    }

    /// <summary>No Nagle delay; and on Linux, a connection whose peer stops acknowledging is given up after
    /// <see cref="TcpTransportOptions.UnacknowledgedTimeout"/>, so a partition does not leave it open behind TCP's
    /// retransmission backoff (the peer's connection is made again, and works as soon as the network does).</summary>
    private static void Configure(Socket socket, TcpTransportOptions options)
    {
        socket.NoDelay = true;
        if (OperatingSystem.IsLinux() && options.UnacknowledgedTimeout > TimeSpan.Zero)
        {
            const int IpProtoTcp = 6;
            const int TcpUserTimeout = 18;
            socket.SetRawSocketOption(IpProtoTcp, TcpUserTimeout, BitConverter.GetBytes((uint)options.UnacknowledgedTimeout.TotalMilliseconds));
        }
    }

    /// <summary>Runs the responder's side on an accepted socket; <paramref name="stopping"/> or <paramref name="cutOff"/>
    /// end the handshake. The link it makes is closed by its owner.</summary>
    public static async Task<TcpLink> AcceptAsync(
        Socket socket, NodeAddress local, NetworkKey key, TcpTransportOptions options, CancellationToken stopping, CancellationToken cutOff)
    {
        Configure(socket, options);
        using var handshaking = CancellationTokenSource.CreateLinkedTokenSource(stopping, cutOff);
        var stream = new NetworkStream(socket, ownsSocket: false);
        var handshake = await Handshake.RunAsync(stream, initiator: false, key, options.HandshakeTimeout, options.RekeyAfterFrames, handshaking.Token).ConfigureAwait(false);
        var link = new TcpLink(socket, stream, Protectors(options, handshake), options.MaxFrameSize, initiated: false);
        try
        {
            link.Remote = await link.ReadHelloAsync(options.HandshakeTimeout, handshaking.Token).ConfigureAwait(false);
            link.InitiatorAddress = link.Remote;
            await link.WriteHelloAsync(local, handshaking.Token).ConfigureAwait(false);
            return link;
        }
        catch
        {
            await link.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static HandshakeResult Protectors(TcpTransportOptions options, HandshakeResult handshake)
    {
        if (!options.PlaintextForBenchmarks)
        {
            return handshake;
        }

        handshake.Send.Dispose();
        handshake.Receive.Dispose();
        return handshake with { Send = FrameProtector.PlaintextForBenchmarks(), Receive = FrameProtector.PlaintextForBenchmarks() };
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

    /// <summary>Reads frames until the other side's goodbye or the end of the connection, handing each overlay
    /// message to <paramref name="reader"/>. Returns why it ended; throws nothing. Does not close the link.</summary>
    public async Task<LinkEnd> ReadLoopAsync(ILinkReader reader)
    {
        long consumed = 0;
        try
        {
            while (true)
            {
                var result = await _reader.ReadAsync(_closedToken).ConfigureAwait(false);
                var buffer = result.Buffer;
                var unread = buffer.Length;
                Volatile.Write(ref _bytesRead, consumed + unread);
                while (TryReadFrame(ref buffer, out var kind, out var body, out var owner))
                {
                    try
                    {
                        switch (kind)
                        {
                            case MessageKind:
                                reader.Deliver(MessageCodec.Read(body.Span, _addresses));
                                break;
                            case GoodbyeKind:
                                if (!body.IsEmpty)
                                {
                                    throw new OverlayProtocolException($"A goodbye frame carries {body.Length} bytes; it has none.");
                                }

                                _reader.AdvanceTo(buffer.Start);
                                return new LinkEnd("the peer handed the connection over", Error: false, Goodbye: true);
                            case ContinuesKind:
                                if (body.Length != ConnectionIdSize)
                                {
                                    throw new OverlayProtocolException($"A hand-over frame carries {body.Length} bytes, not {ConnectionIdSize}.");
                                }

                                var earlier = BinaryPrimitives.ReadUInt128BigEndian(body.Span);
                                ArrayPool<byte>.Shared.Return(owner);
                                owner = [];
                                await reader.WaitForDrainAsync(earlier).ConfigureAwait(false);
                                break;
                            default:
                                throw new OverlayProtocolException($"Unexpected link frame of kind {kind} after the hello.");
                        }
                    }
                    finally
                    {
                        if (owner.Length > 0)
                        {
                            ArrayPool<byte>.Shared.Return(owner);
                        }
                    }
                }

                consumed += unread - buffer.Length;
                _reader.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted)
                {
                    return buffer.IsEmpty
                        ? new LinkEnd("the peer closed the connection", Error: false, Goodbye: false)
                        : new LinkEnd($"the connection ended inside a frame ({buffer.Length} bytes left)", Error: true, Goodbye: false);
                }
            }
        }
        catch (OperationCanceledException)
        {
            return new LinkEnd("closed locally", Error: false, Goodbye: false);
        }
        catch (Exception e) when (e is OverlayProtocolException or OverlayAuthenticationException)
        {
            return new LinkEnd(e.Message, Error: true, Goodbye: false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
            return new LinkEnd($"connection lost: {e.Message}", Error: false, Goodbye: false);
        }
        finally
        {
            _drained.TrySetResult();
        }
    }

    /// <summary>
    /// Seals and writes a batch of messages, then flushes; <paramref name="continues"/>, if given, first tells the
    /// other side that this batch follows everything sent on that earlier connection. A message that cannot be
    /// encoded within the frame limit is refused, counted in the result and reported to <paramref name="refused"/>;
    /// the others are written. Throws on any failure of the connection; the caller drops the link.
    /// </summary>
    public async ValueTask<int> WriteAsync(IReadOnlyList<OverlayMessage> messages, UInt128? continues, Action<OverlayMessage, string> refused)
    {
        if (continues is { } earlier)
        {
            Span<byte> note = stackalloc byte[1 + ConnectionIdSize];
            note[0] = ContinuesKind;
            BinaryPrimitives.WriteUInt128BigEndian(note[1..], earlier);
            WriteFrame(note);
        }

        var count = 0;
        foreach (var message in messages)
        {
            if (MessageCodec.Refusal(message, _maxFrameSize) is { } reason)
            {
                count++;
                refused(message, reason);
                continue;
            }

            _scratch.Clear();
            _scratch.GetSpan(1)[0] = MessageKind;
            _scratch.Advance(1);
            MessageCodec.Write(_scratch, message);
            WriteFrame(_scratch.WrittenSpan);
            if (_writer.UnflushedBytes >= FlushEvery)
            {
                // A batch of large messages must not hold a pooled buffer per frame until the batch ends: more than
                // the pool keeps, so each would be allocated afresh.
                await FlushAsync().ConfigureAwait(false);
            }
        }

        if (_scratch.Capacity > ScratchKept)
        {
            // One very large message must not pin its buffer for the life of the connection.
            _scratch = new ArrayBufferWriter<byte>(256);
        }

        await FlushAsync().ConfigureAwait(false);
        return count;
    }

    /// <summary>Writes the goodbye: nothing more will be written here. The caller then closes the link once the other
    /// side's goodbye has arrived (<see cref="Drained"/>) or a timeout passed.</summary>
    public async ValueTask WriteGoodbyeAsync()
    {
        GoodbyeSent = true;
        WriteFrame([GoodbyeKind]);
        await FlushAsync().ConfigureAwait(false);
    }

    /// <summary>Closes the connection at once: a write in progress fails, reading ends. Never waits for a writer.</summary>
    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _closing, 1) != 0)
        {
            return ValueTask.CompletedTask;
        }

        try
        {
            _closed.Cancel();
        }
        catch (AggregateException)
        {
            // A callback registered on the token threw; the link closes regardless.
        }

        // Linked to the transport's token, which lives as long as the node: undisposed, every link ever made would
        // stay registered there.
        _closed.Dispose();

        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already broken.
        }

        _socket.Dispose();
        return ValueTask.CompletedTask;
    }

    private async ValueTask FlushAsync()
    {
        var flush = await _writer.FlushAsync(_closedToken).ConfigureAwait(false);
        if (flush.IsCanceled || flush.IsCompleted)
        {
            throw new IOException("The connection is closed.");
        }
    }

    private void WriteFrame(ReadOnlySpan<byte> plaintext)
    {
        ObjectDisposedException.ThrowIf(IsClosed, this);
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

    /// <summary>Takes one whole frame off <paramref name="buffer"/>: see <see cref="LinkFrames.TryRead"/>.</summary>
    private bool TryReadFrame(ref ReadOnlySequence<byte> buffer, out byte kind, out ReadOnlyMemory<byte> body, out byte[] owner) =>
        LinkFrames.TryRead(ref buffer, _receive, _maxSealed, out kind, out body, out owner);

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
                    catch (Exception e) when (e is FormatException or ArgumentException)
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

/// <summary>Why a link's reading ended: the other side's goodbye (a hand-over, not a failure), the connection's end,
/// or an error (a protocol violation or a forged frame).</summary>
internal readonly record struct LinkEnd(string Reason, bool Error, bool Goodbye);

/// <summary>Where a link's reader hands what it reads.</summary>
internal interface ILinkReader
{
    /// <summary>One overlay message, in the order sent.</summary>
    void Deliver(OverlayMessage message);

    /// <summary>Completes once reading of the earlier connection <paramref name="connectionId"/> to the same peer has
    /// ended, so that what was sent on it is delivered before what follows on this one.</summary>
    ValueTask WaitForDrainAsync(UInt128 connectionId);
}
