using Iris.Diagnostics;
using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Iris.Overlay.Security;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace Iris.Security;

/// <summary>
/// Orleans connection middleware that secures silo-to-silo and client-to-gateway connections with the overlay's own
/// handshake and frame encryption (<see cref="Handshake"/>, <see cref="FrameProtector"/>): a process without the
/// network key cannot complete the handshake, so it cannot join the cluster or call a gateway. After the handshake,
/// Orleans' byte stream travels in AES-GCM frames of at most 64 KiB each way.
/// </summary>
internal sealed class SecureConnectionMiddleware(ConnectionDelegate next, NetworkKey key, bool initiator, ILogger logger)
{
    private const int MaxChunk = 64 * 1024;
    private const int HeaderSize = 4;
    private static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The pipes between Orleans and the pumps run each side's continuation on the thread that completed it: Orleans'
    /// flush seals and writes to the socket on Orleans' own thread, and Orleans reads a received frame on the worker that
    /// opened it. With the thread pool in between, each request and reply paid one more wake-up of a worker each way at
    /// each end (a tenth to a fifth of a request's CPU time on a loaded two-core machine).
    /// Neither side blocks in its continuation: Orleans queues what it reads, and the pumps only seal and open.
    /// </summary>
    private static readonly PipeOptions InlinePipe = new(readerScheduler: PipeScheduler.Inline, writerScheduler: PipeScheduler.Inline, useSynchronizationContext: false);

    public async Task OnConnectionAsync(ConnectionContext context)
    {
        var transport = context.Transport;
        FrameProtector send;
        FrameProtector receive;
        try
        {
            using var stream = new DuplexPipeStream(transport);
            (send, receive, _) = await Handshake.RunAsync(stream, initiator, key, HandshakeTimeout, 1L << 32, context.ConnectionClosed, SecureChannelKind.Orleans).ConfigureAwait(false);
        }
        catch (OverlayAuthenticationException e)
        {
            Log.ConnectionRefused(logger, context.RemoteEndPoint?.ToString() ?? "?", e.Message);
            context.Abort(new ConnectionAbortedException(e.Message, e));
            if (initiator)
            {
                throw new ConnectionAbortedException($"Connection to {context.RemoteEndPoint} refused: {e.Message}", e);
            }

            return;
        }

        var toApplication = new Pipe(InlinePipe);
        var fromApplication = new Pipe(InlinePipe);
        var inbound = Task.Run(() => PumpInboundAsync(context, transport.Input, toApplication.Writer, receive));
        var outbound = Task.Run(() => PumpOutboundAsync(fromApplication.Reader, transport.Output, send));
        context.Transport = new Duplex(toApplication.Reader, fromApplication.Writer);
        try
        {
            await next(context).ConfigureAwait(false);
        }
        finally
        {
            await toApplication.Reader.CompleteAsync().ConfigureAwait(false);
            await fromApplication.Writer.CompleteAsync().ConfigureAwait(false);
            await Task.WhenAll(inbound, outbound).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            send.Dispose();
            receive.Dispose();
            context.Transport = transport;
        }
    }

    private static async Task PumpOutboundAsync(PipeReader application, PipeWriter network, FrameProtector send)
    {
        var chunk = new byte[MaxChunk];
        try
        {
            while (true)
            {
                var result = await application.ReadAsync().ConfigureAwait(false);
                var buffer = result.Buffer;
                while (!buffer.IsEmpty)
                {
                    var length = (int)Math.Min(buffer.Length, MaxChunk);
                    buffer.Slice(0, length).CopyTo(chunk);
                    var sealedLength = length + send.Overhead;
                    var span = network.GetSpan(HeaderSize + sealedLength);
                    BinaryPrimitives.WriteInt32BigEndian(span, sealedLength);
                    send.Seal(span[..HeaderSize], chunk.AsSpan(0, length), span.Slice(HeaderSize, sealedLength));
                    network.Advance(HeaderSize + sealedLength);
                    buffer = buffer.Slice(length);
                }

                application.AdvanceTo(result.Buffer.End);
                var flush = await network.FlushAsync().ConfigureAwait(false);
                if (result.IsCompleted || flush.IsCompleted)
                {
                    break;
                }
            }
        }
        finally
        {
            await application.CompleteAsync().ConfigureAwait(false);
            await network.CompleteAsync().ConfigureAwait(false);
        }
    }

    private async Task PumpInboundAsync(ConnectionContext context, PipeReader network, PipeWriter application, FrameProtector receive)
    {
        Exception? error = null;
        var header = new byte[HeaderSize];
        try
        {
            while (true)
            {
                var result = await network.ReadAsync().ConfigureAwait(false);
                var buffer = result.Buffer;
                while (buffer.Length >= HeaderSize)
                {
                    buffer.Slice(0, HeaderSize).CopyTo(header);
                    var length = BinaryPrimitives.ReadInt32BigEndian(header);
                    if (length < receive.Overhead || length > MaxChunk + receive.Overhead)
                    {
                        throw new OverlayAuthenticationException($"A frame of {length} bytes is outside the allowed size.");
                    }

                    if (buffer.Length < HeaderSize + length)
                    {
                        break;
                    }

                    var sealedFrame = ArrayPool<byte>.Shared.Rent(length);
                    try
                    {
                        buffer.Slice(HeaderSize, length).CopyTo(sealedFrame);
                        var plain = length - receive.Overhead;
                        receive.Open(header, sealedFrame.AsSpan(0, length), application.GetSpan(plain));
                        application.Advance(plain);
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(sealedFrame);
                    }

                    buffer = buffer.Slice(HeaderSize + length);
                }

                network.AdvanceTo(buffer.Start, buffer.End);
                var flush = await application.FlushAsync().ConfigureAwait(false);
                if (result.IsCompleted || flush.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (OverlayAuthenticationException e)
        {
            Log.ConnectionRefused(logger, context.RemoteEndPoint?.ToString() ?? "?", e.Message);
            context.Abort(new ConnectionAbortedException(e.Message, e));
            error = e;
        }
        catch (Exception e) when (e is IOException or ConnectionAbortedException or ConnectionResetException or InvalidOperationException)
        {
            error = e;
        }
        finally
        {
            await network.CompleteAsync().ConfigureAwait(false);
            await application.CompleteAsync(error).ConfigureAwait(false);
        }
    }

    private sealed class Duplex(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }

    /// <summary>The raw connection as a stream, for the handshake; leaves the pipes open.</summary>
    private sealed class DuplexPipeStream(IDuplexPipe pipe) : Stream
    {
        private readonly Stream _input = pipe.Input.AsStream(leaveOpen: true);
        private readonly Stream _output = pipe.Output.AsStream(leaveOpen: true);

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => _input.ReadAsync(buffer, cancellationToken);

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await _output.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            await _output.FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("Asynchronous use only.");

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("Asynchronous use only.");

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
