using Iris.Protocol;

namespace Iris.Tunnels;

/// <summary>
/// The receiving half of a tunnel end, with no calls of its own: frames taken from one process are put back in order,
/// chunks reassembled, whole messages queued for the application; bytes are counted back as the application takes
/// them, and every quarter window the running total to grant the sender is handed out. What waits here stays within
/// the window, plus one large message being reassembled, whose chunks are granted while nothing else waits.
/// </summary>
internal sealed class TunnelReceiver(string cluster, int windowBytes, int maxMessageBytes)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<long, TunnelFrame> _early = [];
    private readonly Queue<(byte[] Message, int Ungranted)> _messages = new();
    private readonly int _grantThreshold = windowBytes / 4;
    private string? _from;
    private long _nextReceive;
    private List<byte[]>? _partial;
    private long _partialBytes;
    private int _partialUngranted;
    private int _toGrant;
    private long _granted;
    private long _buffered;
    private TaskCompletionSource? _waiter;
    private TunnelEnding _ended;

    /// <summary>What became of the frames of one <see cref="Accept"/>.</summary>
    /// <param name="Taken">False when they came from another process than the one frames are taken from.</param>
    /// <param name="Grant">The running total of bytes to grant the sender now, or 0.</param>
    /// <param name="ClosedBy">The sender closed the tunnel gracefully after its last message.</param>
    /// <param name="TooLarge">Why a message was refused as too large, or null.</param>
    internal readonly record struct Accepted(bool Taken, long Grant, bool ClosedBy, string? TooLarge);

    /// <summary>The process frames are taken from.</summary>
    public string? From
    {
        get
        {
            lock (_gate)
            {
                return _from;
            }
        }
    }

    /// <summary>Bytes waiting here: out-of-order frames, a message being reassembled, whole messages.</summary>
    public long BufferedBytes
    {
        get
        {
            lock (_gate)
            {
                return _buffered;
            }
        }
    }

    /// <summary>The running total granted so far (what the application took, granted in quarter windows).</summary>
    public long Granted
    {
        get
        {
            lock (_gate)
            {
                return _granted;
            }
        }
    }

    /// <summary>Takes frames from <paramref name="process"/> from now on. Another process than before starts
    /// afresh: nothing of the earlier one reached the application.</summary>
    public void TakeFrom(string process)
    {
        lock (_gate)
        {
            if (string.Equals(_from, process, StringComparison.Ordinal))
            {
                return;
            }

            _from = process;
            _early.Clear();
            _messages.Clear();
            _partial = null;
            _partialBytes = 0;
            _partialUngranted = 0;
            _nextReceive = 0;
            _toGrant = 0;
            _granted = 0;
            _buffered = 0;
        }
    }

    /// <summary>Frames from process <paramref name="from"/>, in any order, repeats included.</summary>
    public Accepted Accept(string from, IReadOnlyList<TunnelFrame> frames)
    {
        long grant = 0;
        lock (_gate)
        {
            if (!string.Equals(_from, from, StringComparison.Ordinal) || _ended.Reason is not null)
            {
                return new Accepted(Taken: false, 0, false, null);
            }

            foreach (var frame in frames)
            {
                if (frame.Sequence >= _nextReceive && _early.TryAdd(frame.Sequence, frame))
                {
                    _buffered += frame.Data.Length;
                }
            }

            while (_early.Remove(_nextReceive, out var frame))
            {
                _nextReceive++;
                switch (frame.Kind)
                {
                    case TunnelFrameKind.Chunk:
                        (_partial ??= []).Add(frame.Data);
                        _partialBytes += frame.Data.Length;
                        if (_partialBytes > maxMessageBytes)
                        {
                            return new Accepted(true, grant, false, $"more than {maxMessageBytes} bytes");
                        }

                        if (_messages.Count == 0)
                        {
                            grant = Math.Max(grant, Release(TunnelFrame.Cost(frame.Data.Length)));
                        }
                        else
                        {
                            _partialUngranted += TunnelFrame.Cost(frame.Data.Length);
                        }

                        break;
                    case TunnelFrameKind.Final:
                        var message = _partial is null ? frame.Data : Concatenate(_partial, frame.Data, _partialBytes);
                        if (message.Length > maxMessageBytes)
                        {
                            return new Accepted(true, grant, false, $"{message.Length} bytes, more than {maxMessageBytes}");
                        }

                        _messages.Enqueue((message, _partialUngranted + TunnelFrame.Cost(frame.Data.Length)));
                        _partial = null;
                        _partialBytes = 0;
                        _partialUngranted = 0;
                        Wake();
                        break;
                    case TunnelFrameKind.Abort:
                        _buffered -= _partialBytes;
                        grant = Math.Max(grant, Release(_partialUngranted));
                        _partial = null;
                        _partialBytes = 0;
                        _partialUngranted = 0;
                        break;
                    case TunnelFrameKind.Close:
                        return new Accepted(true, grant, ClosedBy: true, null);
                }
            }
        }

        return new Accepted(true, grant, false, null);
    }

    /// <summary>
    /// The next whole message, with the running total to grant the sender now (0: nothing yet); or, with none
    /// waiting, null and a task that completes when one may be (the tunnel ended: throws once nothing is left).
    /// </summary>
    public (byte[]? Message, long Grant, Task Arrival) Take()
    {
        lock (_gate)
        {
            if (_messages.TryDequeue(out var next))
            {
                _buffered -= next.Message.Length;
                var released = next.Ungranted;
                if (_messages.Count == 0)
                {
                    // Nothing else waits: the chunks of a message being reassembled may come on.
                    released += _partialUngranted;
                    _partialUngranted = 0;
                }

                return (next.Message, Release(released), Task.CompletedTask);
            }

            _ended.ThrowIfEnded(cluster);
            return (null, 0, (_waiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task);
        }
    }

    /// <summary>Whether nothing can be taken now and the tunnel is still open: a <see cref="Take"/> would wait.</summary>
    public bool IsEmptyAndOpen
    {
        get
        {
            lock (_gate)
            {
                return _messages.Count == 0 && _ended.Reason is null;
            }
        }
    }

    /// <summary>Ends receiving: whole messages already here can still be taken, then <see cref="Take"/> throws.</summary>
    public void End(TunnelCloseReason reason, string? detail)
    {
        lock (_gate)
        {
            if (!_ended.TrySet(reason, detail))
            {
                return;
            }

            _early.Clear();
            _partial = null;
            _buffered = _messages.Sum(m => (long)m.Message.Length);
            Wake();
        }
    }

    /// <summary>Counts consumed bytes; once a quarter window has gathered, returns the new running total to grant the
    /// sender (0: nothing to send yet).</summary>
    private long Release(int bytes)
    {
        _toGrant += bytes;
        if (_toGrant < _grantThreshold)
        {
            return 0;
        }

        _granted += _toGrant;
        _toGrant = 0;
        return _granted;
    }

    private void Wake()
    {
        _waiter?.TrySetResult();
        _waiter = null;
    }

    private static byte[] Concatenate(List<byte[]> chunks, byte[] last, long length)
    {
        var message = new byte[length + last.Length];
        var offset = 0;
        foreach (var chunk in chunks)
        {
            chunk.CopyTo(message, offset);
            offset += chunk.Length;
        }

        last.CopyTo(message, offset);
        return message;
    }
}
