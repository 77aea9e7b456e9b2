using System.Threading.Channels;
using Iris.Diagnostics;
using Iris.Protocol;

namespace Iris.Tunnels;

/// <summary>
/// The sending half of a tunnel end, with no calls of its own: a message is cut into chunks of at most
/// <see cref="TunnelOptions.ChunkBytes"/>, each numbered and queued (<see cref="Frames"/>) once the receiver's window
/// has room for it (its bytes and <see cref="TunnelFrame.CreditOverhead"/>). The receiver grants room back as a running
/// total of what its application took. One message
/// at a time; a close follows everything sent before it.
/// </summary>
internal sealed class TunnelSender(string cluster, int maxMessageBytes)
{
    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly Channel<TunnelFrame> _frames = Channel.CreateUnbounded<TunnelFrame>(new UnboundedChannelOptions { SingleReader = true });
    private long _window;
    private long _spent;
    private long _granted;
    private long _nextSend;
    private TaskCompletionSource? _creditWaiter;
    private TunnelEnding _ended;
    private volatile bool _closing;

    /// <summary>The frames to carry to the receiver, in the order they were numbered; completed once the tunnel
    /// closed or ended.</summary>
    public ChannelReader<TunnelFrame> Frames => _frames.Reader;

    /// <summary>The receiver accepts <paramref name="bytes"/> ahead of what it granted.</summary>
    public void Open(long bytes)
    {
        lock (_gate)
        {
            _window = bytes;
        }

        Wake();
    }

    /// <summary>The receiver's application has taken <paramref name="grantedTotal"/> bytes since the tunnel opened: a
    /// running total, so a grant repeated or overtaken by a later one grants nothing extra.</summary>
    public void OnCredit(long grantedTotal)
    {
        lock (_gate)
        {
            _granted = Math.Max(_granted, grantedTotal);
        }

        Wake();
    }

    /// <summary>Queues <paramref name="message"/>, waiting for room in the receiver's window chunk by chunk. A send
    /// cancelled or ended halfway queues an abort, so the receiver drops the part it got.</summary>
    public async ValueTask SendAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken)
    {
        ThrowIfEnded();
        if (message.Length > maxMessageBytes)
        {
            throw new TunnelMessageTooLargeException(cluster, message.Length, maxMessageBytes);
        }

        await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        var partlySent = false;
        try
        {
            var offset = 0;
            do
            {
                var size = Math.Min(TunnelOptions.ChunkBytes, message.Length - offset);
                await TakeCreditAsync(TunnelFrame.Cost(size), cancellationToken).ConfigureAwait(false);
                var last = offset + size == message.Length;
                Enqueue(last ? TunnelFrameKind.Final : TunnelFrameKind.Chunk, message.Slice(offset, size).ToArray());
                offset += size;
                partlySent = !last;
            }
            while (offset < message.Length);

            IrisMetrics.TunnelMessages.Add(1, IrisMetrics.Sent);
            IrisMetrics.TunnelBytes.Add(message.Length, IrisMetrics.Sent);
        }
        catch (Exception) when (partlySent)
        {
            // Part of the message went out: the receiver drops it.
            Enqueue(TunnelFrameKind.Abort, []);
            throw;
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>
    /// Queues the close after everything sent before it and completes <see cref="Frames"/>. A send waiting for room
    /// is not sent: it ends (and aborts what it queued of its message). False when the tunnel ended meanwhile.
    /// </summary>
    public async Task<bool> CloseAsync(CancellationToken cancellationToken)
    {
        _closing = true;
        Wake();
        await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            lock (_gate)
            {
                if (_ended.Reason is not null)
                {
                    return false;
                }
            }

            Enqueue(TunnelFrameKind.Close, []);
            _frames.Writer.TryComplete();
            return true;
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>Ends sending: waiting and later sends throw, nothing more is queued.</summary>
    public void End(TunnelCloseReason reason, string? detail)
    {
        lock (_gate)
        {
            if (!_ended.TrySet(reason, detail))
            {
                return;
            }
        }

        Wake();
        _frames.Writer.TryComplete();
    }

    private void ThrowIfEnded()
    {
        lock (_gate)
        {
            _ended.ThrowIfEnded(cluster);
        }

        if (_closing)
        {
            throw new TunnelClosedException(cluster, TunnelCloseReason.Closed);
        }
    }

    private async Task TakeCreditAsync(int size, CancellationToken cancellationToken)
    {
        var stalled = false;
        while (true)
        {
            Task waiter;
            lock (_gate)
            {
                _ended.ThrowIfEnded(cluster);
                if (_window + _granted - _spent >= size)
                {
                    _spent += size;
                    return;
                }

                // Closing: a send that would have to wait is not sent (one that has credit goes on, the close follows it).
                if (_closing)
                {
                    throw new TunnelClosedException(cluster, TunnelCloseReason.Closed);
                }

                waiter = (_creditWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
            }

            if (!stalled)
            {
                stalled = true;
                IrisMetrics.TunnelCreditStalls.Add(1);
            }

            await waiter.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private void Enqueue(TunnelFrameKind kind, byte[] data)
    {
        long sequence;
        lock (_gate)
        {
            sequence = _nextSend++;
        }

        _frames.Writer.TryWrite(new TunnelFrame(sequence, kind, data));
    }

    private void Wake()
    {
        TaskCompletionSource? waiter;
        lock (_gate)
        {
            waiter = _creditWaiter;
            _creditWaiter = null;
        }

        waiter?.TrySetResult();
    }
}
