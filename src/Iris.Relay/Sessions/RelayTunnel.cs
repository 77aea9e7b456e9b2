using System.Threading.Channels;
using Iris.Relay.Protocol;
using Iris.Tunnels;

namespace Iris.Relay.Sessions;

/// <summary>
/// One tunnel between a relay client and the network: the client's chunks are put together into messages and sent on
/// the Iris tunnel, the tunnel's messages are cut into chunks for the client. Flow control is by allowance in bytes both
/// ways. Towards the client: a message's first chunk waits until the client has granted room for it, its continuation
/// chunks go regardless (the balance may go negative), so a large message never wedges the tunnel. From the client: the
/// relay grants its buffer once, then grants back each chunk as it takes it into the message being put together; while
/// the Iris tunnel's window is full, it takes no more, the client's allowance runs out and its sends wait. A message
/// whose first chunk comes while another is incomplete replaces it (the client gave up on that one).
/// </summary>
internal sealed class RelayTunnel
{
    /// <summary>Room first given to a message being put together; it doubles as chunks come, up to the message's size.</summary>
    private const int FirstAssemblyBytes = 1024 * 1024;

    private readonly RelayConnection _connection;
    private readonly ITunnel _tunnel;
    private readonly int _bufferBytes;
    private readonly int _maxMessageBytes;
    private readonly Channel<RelayFrame> _chunks = Channel.CreateUnbounded<RelayFrame>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _allowed = new(0);
    private long _allowance;
    private long _queuedChunkBytes;
    private int _closeSent;
    private volatile bool _draining;
    private volatile string? _abortReason;

    public RelayTunnel(RelayConnection connection, ulong id, ITunnel tunnel, int bufferBytes, int maxMessageBytes)
    {
        _connection = connection;
        Id = id;
        _tunnel = tunnel;
        _bufferBytes = bufferBytes;
        _maxMessageBytes = maxMessageBytes;
    }

    /// <summary>The client's id of the tunnel.</summary>
    public ulong Id { get; }

    /// <summary>Grants the client its buffer, then carries messages both ways until the tunnel closes; the client is
    /// told once, with the reason (empty when graceful).</summary>
    public async Task RunAsync()
    {
        try
        {
            await _connection.PostAsync(RelayOut.TunnelAllowance(Id, (ulong)_bufferBytes), _stop.Token).ConfigureAwait(false);
            var toNetwork = ToNetworkAsync();
            var reason = await ToClientAsync().ConfigureAwait(false);
            _chunks.Writer.TryComplete();
            await _stop.CancelAsync().ConfigureAwait(false);
            await toNetwork.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await CloseAsync(reason).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            await CloseAsync(_abortReason ?? string.Empty).ConfigureAwait(false);
        }
        finally
        {
            _connection.Forget(this);
        }
    }

    /// <summary>More room the client granted for what the relay sends it.</summary>
    public void Grant(ulong bytes)
    {
        Interlocked.Add(ref _allowance, (long)Math.Min(bytes, int.MaxValue));
        if (_allowed.CurrentCount == 0)
        {
            _allowed.Release();
        }
    }

    /// <summary>A chunk from the client. It may send a message's continuation chunks past its allowance, but never more
    /// than the buffer it was granted and one whole message: past that it breaks the protocol.</summary>
    public void Receive(in RelayFrame chunk)
    {
        if (_draining)
        {
            // The tunnel is closing over a message too large: the rest of it is dropped as it comes.
            return;
        }

        if (chunk.Value > (ulong)_maxMessageBytes)
        {
            // Seen here, not only when the pump gets to it: its other chunks are dropped from now on.
            _draining = true;
        }

        if (Interlocked.Add(ref _queuedChunkBytes, chunk.Data.Length) > (long)_bufferBytes + _maxMessageBytes + RelayProtocol.ChunkLimit)
        {
            throw new RelayProtocolException($"tunnel {Id} was sent more than the {_bufferBytes} bytes of allowance the relay granted it and one message");
        }

        _chunks.Writer.TryWrite(chunk);
    }

    /// <summary>The client closed the tunnel: what it sent before still goes, then the Iris tunnel closes gracefully.</summary>
    public void CloseByClient() => _chunks.Writer.TryComplete();

    /// <summary>The connection is going: the tunnel ends now, and the other side hears that its peer is gone (not a
    /// graceful close: what the client had not yet sent, or the relay not yet delivered, is lost).</summary>
    public void Abort(string why)
    {
        _chunks.Writer.TryComplete();
        _abortReason ??= why;
        Fail(TunnelCloseReason.PeerDied, $"the relay client at the other end is gone: {why}");
        _stop.Cancel();
    }

    /// <summary>Ends the Iris tunnel with <paramref name="reason"/> for the other side, where the tunnel allows it (an
    /// Iris tunnel end does); else closes it.</summary>
    private void Fail(TunnelCloseReason reason, string detail)
    {
        if (_tunnel is TunnelEnd end)
        {
            end.End(reason, detail, notifyPeer: true);
        }
        else
        {
            _ = Quietly.Await(_tunnel.DisposeAsync());
        }
    }

    private async Task ToNetworkAsync()
    {
        byte[]? message = null;
        var size = 0;
        var filled = 0;
        var closeGracefully = false;
        try
        {
            await foreach (var chunk in _chunks.Reader.ReadAllAsync(_stop.Token).ConfigureAwait(false))
            {
                var length = chunk.Data.Length;
                Interlocked.Add(ref _queuedChunkBytes, -length);
                if (chunk.Value != 0)
                {
                    // A new message: an incomplete one before it was given up by its sender.
                    if (chunk.Value > (ulong)_maxMessageBytes)
                    {
                        // The client hears why once the sending half has stopped: no chunk follows its TunnelClose.
                        _draining = true;
                        _abortReason ??= $"a message of {chunk.Value} bytes is over the {_maxMessageBytes}-byte limit of tunnels through this relay (Iris:Tunnels:MaxMessageBytes)";
                        Fail(TunnelCloseReason.MessageTooLarge, $"the relay client sent a message of {chunk.Value} bytes");
                        await _stop.CancelAsync().ConfigureAwait(false);
                        return;
                    }

                    size = (int)chunk.Value;
                    message = new byte[Math.Min(size, FirstAssemblyBytes)];
                    filled = 0;
                }

                if (message is null && chunk.Value == 0 && length == 0)
                {
                    // An empty message: a first chunk of size 0 cannot say so otherwise.
                    await _tunnel.SendAsync(ReadOnlyMemory<byte>.Empty, _stop.Token).ConfigureAwait(false);
                    continue;
                }

                if (message is not null)
                {
                    if (filled + length > size)
                    {
                        _connection.Violate($"a chunk of tunnel {Id} runs past the {size} bytes its message declared");
                        return;
                    }

                    if (filled + length > message.Length)
                    {
                        Array.Resize(ref message, (int)Math.Min(size, Math.Max(2L * message.Length, filled + length)));
                    }

                    chunk.Data.CopyTo(message.AsSpan(filled));
                    filled += length;
                }

                // Taken in, or dropped as the rest of a message given up on: either way the room is the client's again.
                if (length > 0)
                {
                    await _connection.PostAsync(RelayOut.TunnelAllowance(Id, (ulong)length), _stop.Token).ConfigureAwait(false);
                }

                if (message is not null && filled == size)
                {
                    var whole = message;
                    message = null;
                    await _tunnel.SendAsync(whole, _stop.Token).ConfigureAwait(false);
                }
            }

            closeGracefully = true;
        }
        catch (TunnelClosedException)
        {
            // The other side closed or is gone: the receiving half reports it to the client.
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }

        if (closeGracefully)
        {
            // The client closed: what it sent is on the Iris tunnel, which now closes; the receiving half then ends.
            await _tunnel.CloseAsync(CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await _stop.CancelAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Carries the tunnel's messages to the client until the tunnel closes; returns what to tell the client
    /// (empty when graceful).</summary>
    private async Task<string> ToClientAsync()
    {
        try
        {
            while (true)
            {
                var message = await _tunnel.ReceiveAsync(_stop.Token).ConfigureAwait(false);
                var offset = 0;
                do
                {
                    var length = Math.Min(RelayProtocol.ChunkLimit, message.Length - offset);
                    if (offset == 0)
                    {
                        while (Volatile.Read(ref _allowance) < length)
                        {
                            await _allowed.WaitAsync(_stop.Token).ConfigureAwait(false);
                        }
                    }

                    Interlocked.Add(ref _allowance, -length);
                    var size = offset == 0 ? (ulong)message.Length : 0;
                    await _connection.PostAsync(RelayOut.TunnelTransfer(Id, size, message.AsMemory(offset, length)), _stop.Token).ConfigureAwait(false);
                    offset += length;
                }
                while (offset < message.Length);
            }
        }
        catch (TunnelClosedException e)
        {
            return e.Reason is TunnelCloseReason.ClosedByPeer or TunnelCloseReason.Closed ? string.Empty : e.Message;
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // Stopped: gracefully after the client's close, else for the reason the tunnel was ended.
            return _abortReason ?? string.Empty;
        }
    }

    private async Task CloseAsync(string reason)
    {
        if (Interlocked.Exchange(ref _closeSent, 1) != 0)
        {
            return;
        }

        // Forgotten before the client hears of it: it may open a tunnel with the same id at once.
        _connection.Forget(this);
        _connection.Push(RelayOut.TunnelClose(Id, reason), force: true);
        await Quietly.Await(_tunnel.DisposeAsync()).ConfigureAwait(false);
    }
}
