using System.Diagnostics;
using System.IO.Pipelines;
using System.Threading.Channels;
using Iris.Relay.Protocol;

namespace Iris.Relay.Sessions;

/// <summary>
/// What the relay sends to one client, in order, written by one loop. Messages pushed by the network (requests,
/// broadcasts and events for the client) are refused once the queue holds its limit: the client does not read, and its
/// connection is closed rather than letting it hold the silo's memory. Replies and tunnel chunks wait for room instead
/// (the client asked for them, and tunnels are flow-controlled). Nothing is written before <see cref="RunAsync"/> writes
/// the handshake's answer, so a request that reaches a new member while it registers still follows that answer.
/// A writer that has been idle for a while is woken on the thread that queues (synchronous continuations) and writes at
/// once, saving a thread hop on a quiet connection. A writer woken again soon after its last flush moves to the thread
/// pool first, so that what queues meanwhile goes out with one send: writing each message alone on the queueing thread
/// cost a third of the rate at 128 relay callers.
/// </summary>
internal sealed class RelayOutbox(long limit)
{
    /// <summary>How soon after a flush a woken writer counts as busy and lets messages gather.</summary>
    private static readonly TimeSpan Busy = TimeSpan.FromMilliseconds(1);

    private readonly Channel<RelayOut> _queue = Channel.CreateUnbounded<RelayOut>(
        new UnboundedChannelOptions { SingleReader = true, AllowSynchronousContinuations = true });
    private readonly ByteGate _bytes = new(limit);

    public long Limit => limit;

    /// <summary>Queues a message the network pushes at the client; false when the queue is full or closed.</summary>
    public bool TryPost(in RelayOut frame)
    {
        if (!_bytes.TryTake(frame.Cost))
        {
            return false;
        }

        if (_queue.Writer.TryWrite(frame))
        {
            return true;
        }

        _bytes.Return(frame.Cost);
        return false;
    }

    /// <summary>Queues a message once the queue is under half its limit; false when the queue is closed.</summary>
    public async ValueTask<bool> PostAsync(RelayOut frame, CancellationToken cancellationToken)
    {
        await _bytes.TakeAsync(frame.Cost, limit / 2, cancellationToken).ConfigureAwait(false);
        if (_queue.Writer.TryWrite(frame))
        {
            return true;
        }

        _bytes.Return(frame.Cost);
        return false;
    }

    /// <summary>Queues a message whatever the queue holds; false when the queue is closed.</summary>
    public bool PostForced(in RelayOut frame)
    {
        _bytes.Force(frame.Cost);
        if (_queue.Writer.TryWrite(frame))
        {
            return true;
        }

        _bytes.Return(frame.Cost);
        return false;
    }

    /// <summary>Queues the last message, whatever the queue holds, and closes the queue behind it.</summary>
    public void PostLast(in RelayOut frame)
    {
        PostForced(frame);
        _queue.Writer.TryComplete();
    }

    /// <summary>Closes the queue: what it holds is still written.</summary>
    public void Complete() => _queue.Writer.TryComplete();

    /// <summary>Writes <paramref name="first"/>, then everything queued, flushing whenever the queue runs dry, until the
    /// queue is closed and empty.</summary>
    public async Task RunAsync(PipeWriter output, RelayOut first, CancellationToken cancellationToken)
    {
        RelayWriter.Write(output, first);
        await output.FlushAsync(cancellationToken).ConfigureAwait(false);
        var reader = _queue.Reader;
        var flushed = Stopwatch.GetTimestamp();
        while (await reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            if (Stopwatch.GetElapsedTime(flushed) < Busy)
            {
                await Task.CompletedTask.ConfigureAwait(ConfigureAwaitOptions.ForceYielding);
            }

            while (reader.TryRead(out var frame))
            {
                RelayWriter.Write(output, frame);
                _bytes.Return(frame.Cost);
                if (output.UnflushedBytes >= 256 * 1024)
                {
                    await output.FlushAsync(cancellationToken).ConfigureAwait(false);
                }
            }

            await output.FlushAsync(cancellationToken).ConfigureAwait(false);
            flushed = Stopwatch.GetTimestamp();
        }
    }
}
