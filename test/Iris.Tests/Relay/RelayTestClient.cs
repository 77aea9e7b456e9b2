using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;

namespace Iris.Tests.Relay;

/// <summary>
/// The client side of the Iris relay protocol v1.0-draft2, written from the protocol's description (not from the
/// relay's code), as an Iris client library would be: connect, register, request, reply, broadcast, publish/subscribe
/// and tunnels with allowances. A member's requests run under client-side limits (handlers at once, bytes queued) and a
/// request whose time ran out while it was queued is dropped unrun, as in the Go library.
/// </summary>
internal sealed class RelayTestClient : IAsyncDisposable
{
    public const string Version = "v1.0-draft2";
    private const int Buffer = 64 * 1024 * 1024;

    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly BufferedStream _output;
    private int _waitingWriters;
    private readonly ConcurrentDictionary<ulong, TaskCompletionSource<(bool TimedOut, bool Success, byte[] Reply, string Fault)>> _requests = new();
    private readonly ConcurrentDictionary<string, Func<byte[], Task>> _topics = new();
    private readonly ConcurrentDictionary<ulong, ClientTunnel> _tunnels = new();
    private readonly ConcurrentDictionary<ulong, TaskCompletionSource<int>> _opening = new();
    private readonly TaskCompletionSource<string> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _requestThreads;
    private readonly int _requestMemory;
    private long _requestUsed;
    private long _nextId;
    private Task? _reading;

    private RelayTestClient(TcpClient tcp, RelayMemberHandler? handler)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
        _output = new BufferedStream(_stream, 64 * 1024);
        Handler = handler;
        _requestThreads = new SemaphoreSlim(handler?.RequestThreads ?? 1);
        _requestMemory = handler?.RequestMemory ?? int.MaxValue;
    }

    public RelayMemberHandler? Handler { get; }

    /// <summary>The relay's reason when it closed the connection (empty when graceful); or the read error.</summary>
    public Task<string> Closed => _closed.Task;

    /// <summary>Requests this member's handler ran.</summary>
    public int Executed;

    /// <summary>Requests taken in and waiting for a handler thread (not yet run or dropped as expired).</summary>
    public int Queued;

    /// <summary>Each request taken in, with the time it expires.</summary>
    public ConcurrentQueue<(byte[] Request, DateTime Expires)> TakenIn { get; } = new();

    public static async Task<RelayTestClient> ConnectAsync(IPEndPoint relay, string cluster = "", RelayMemberHandler? handler = null, string magic = "iris-client-magic", string version = Version)
    {
        var tcp = new TcpClient(relay.AddressFamily) { NoDelay = true };
        await tcp.ConnectAsync(relay);
        var client = new RelayTestClient(tcp, handler);
        await client.SendAsync(w => { w.Byte(0x00); w.String(magic); w.String(version); w.String(cluster); });
        var reader = new FieldReader(client._stream);
        var op = await reader.ByteAsync();
        var relayMagic = await reader.StringAsync();
        if (relayMagic != "iris-relay-magic")
        {
            throw new InvalidDataException($"bad relay magic '{relayMagic}'");
        }

        var text = await reader.StringAsync();
        if (op == 0x01)
        {
            tcp.Dispose();
            throw new RelayDeniedException(text);
        }

        if (op != 0x00 || text != Version)
        {
            throw new InvalidDataException($"bad handshake answer 0x{op:x2} '{text}'");
        }

        client._reading = client.ReadLoopAsync(reader);
        return client;
    }

    /// <summary>Connects and sends <paramref name="bytes"/> as they are, for malformed input: the relay's answer and its
    /// close reason come back from <see cref="Closed"/>.</summary>
    public static async Task<(Socket Socket, byte[] Answer)> SendRawAsync(IPEndPoint relay, byte[] bytes, TimeSpan wait)
    {
        var socket = new Socket(relay.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(relay);
        await socket.SendAsync(bytes);
        var answer = new MemoryStream();
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(wait);
        try
        {
            while (true)
            {
                var n = await socket.ReceiveAsync(buffer, timeout.Token);
                if (n == 0)
                {
                    break;
                }

                answer.Write(buffer, 0, n);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException)
        {
        }

        return (socket, answer.ToArray());
    }

    public async Task<byte[]> RequestAsync(string cluster, byte[] request, TimeSpan timeout)
    {
        var id = (ulong)Interlocked.Increment(ref _nextId);
        var answer = new TaskCompletionSource<(bool, bool, byte[], string)>(TaskCreationOptions.RunContinuationsAsynchronously);
        _requests[id] = answer;
        await SendAsync(w => { w.Byte(0x04); w.Varint(id); w.String(cluster); w.Binary(request); w.Varint((ulong)timeout.TotalMilliseconds); });
        var (timedOut, success, reply, fault) = await answer.Task.WaitAsync(timeout + TimeSpan.FromSeconds(10));
        _requests.TryRemove(id, out _);
        return timedOut ? throw new RelayTimeoutException() : success ? reply : throw new RelayFaultException(fault);
    }

    public Task BroadcastAsync(string cluster, byte[] message) =>
        SendAsync(w => { w.Byte(0x03); w.String(cluster); w.Binary(message); });

    public Task SubscribeAsync(string topic, Func<byte[], Task> handler)
    {
        _topics[topic] = handler;
        return SendAsync(w => { w.Byte(0x06); w.String(topic); });
    }

    public Task UnsubscribeAsync(string topic)
    {
        _topics.TryRemove(topic, out _);
        return SendAsync(w => { w.Byte(0x07); w.String(topic); });
    }

    public Task PublishAsync(string topic, byte[] message) =>
        SendAsync(w => { w.Byte(0x08); w.String(topic); w.Binary(message); });

    /// <summary>Opens a tunnel; null when the relay answered timed out.</summary>
    public async Task<ClientTunnel?> TunnelAsync(string cluster, TimeSpan timeout)
    {
        var id = (ulong)Interlocked.Increment(ref _nextId);
        var tunnel = new ClientTunnel(this, id);
        _tunnels[id] = tunnel;
        var result = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        _opening[id] = result;
        await SendAsync(w => { w.Byte(0x09); w.Varint(id); w.String(cluster); w.Varint((ulong)timeout.TotalMilliseconds); });
        var chunkLimit = await result.Task.WaitAsync(timeout + TimeSpan.FromSeconds(10));
        if (chunkLimit == 0)
        {
            _tunnels.TryRemove(id, out _);
            return null;
        }

        tunnel.ChunkLimit = chunkLimit;
        await SendAsync(w => { w.Byte(0x0b); w.Varint(id); w.Varint(Buffer); });
        return tunnel;
    }

    /// <summary>Closes gracefully: returns the relay's reason (empty when graceful).</summary>
    public async Task<string> CloseAsync()
    {
        await SendAsync(w => w.Byte(0x02));
        return await _closed.Task.WaitAsync(TimeSpan.FromSeconds(30));
    }

    public async ValueTask DisposeAsync()
    {
        _tcp.Dispose();
        if (_reading is not null)
        {
            await _reading.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    /// <summary>Writes one message; as the Go library does, the last of the writers waiting at a time flushes, so
    /// messages sent at once leave together.</summary>
    internal async Task SendAsync(Action<FieldWriter> write)
    {
        var writer = new FieldWriter();
        write(writer);
        Interlocked.Increment(ref _waitingWriters);
        await _writeLock.WaitAsync();
        try
        {
            await _output.WriteAsync(writer.Buffer.WrittenMemory);
            if (Interlocked.Decrement(ref _waitingWriters) == 0)
            {
                await _output.FlushAsync();
            }
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async Task ReadLoopAsync(FieldReader reader)
    {
        string reason;
        try
        {
            while (true)
            {
                var op = await reader.ByteAsync();
                switch (op)
                {
                    case 0x02:
                        reason = await reader.StringAsync();
                        goto done;
                    case 0x03:
                        {
                            var message = await reader.BinaryAsync();
                            Handler?.Broadcasts.Writer.TryWrite(message);
                            break;
                        }

                    case 0x04:
                        {
                            var id = await reader.VarintAsync();
                            var request = await reader.BinaryAsync();
                            var timeout = TimeSpan.FromMilliseconds(await reader.VarintAsync());
                            HandleRequest(id, request, timeout);
                            break;
                        }

                    case 0x05:
                        {
                            var id = await reader.VarintAsync();
                            var timedOut = await reader.BoolAsync();
                            var (success, reply, fault) = (false, Array.Empty<byte>(), string.Empty);
                            if (!timedOut)
                            {
                                success = await reader.BoolAsync();
                                if (success)
                                {
                                    reply = await reader.BinaryAsync();
                                }
                                else
                                {
                                    fault = await reader.StringAsync();
                                }
                            }

                            if (_requests.TryGetValue(id, out var answer))
                            {
                                answer.TrySetResult((timedOut, success, reply, fault));
                            }

                            break;
                        }

                    case 0x08:
                        {
                            var topic = await reader.StringAsync();
                            var message = await reader.BinaryAsync();
                            if (_topics.TryGetValue(topic, out var handler))
                            {
                                _ = Task.Run(() => handler(message));
                            }

                            break;
                        }

                    case 0x09:
                        {
                            var buildId = await reader.VarintAsync();
                            var chunkLimit = (int)await reader.VarintAsync();
                            var id = (ulong)Interlocked.Increment(ref _nextId);
                            var tunnel = new ClientTunnel(this, id) { ChunkLimit = chunkLimit };
                            _tunnels[id] = tunnel;
                            _ = Task.Run(async () =>
                            {
                                await SendAsync(w => { w.Byte(0x0a); w.Varint(buildId); w.Varint(id); });
                                await SendAsync(w => { w.Byte(0x0b); w.Varint(id); w.Varint(Buffer); });
                                if (Handler?.Tunnel is { } serve)
                                {
                                    await serve(tunnel);
                                }
                            });
                            break;
                        }

                    case 0x0a:
                        {
                            var id = await reader.VarintAsync();
                            var timedOut = await reader.BoolAsync();
                            var chunkLimit = timedOut ? 0 : (int)await reader.VarintAsync();
                            if (_opening.TryRemove(id, out var result))
                            {
                                result.TrySetResult(chunkLimit);
                            }

                            break;
                        }

                    case 0x0b:
                        {
                            var id = await reader.VarintAsync();
                            var bytes = (long)await reader.VarintAsync();
                            if (_tunnels.TryGetValue(id, out var tunnel))
                            {
                                tunnel.Grant(bytes);
                            }

                            break;
                        }

                    case 0x0c:
                        {
                            var id = await reader.VarintAsync();
                            var size = (int)await reader.VarintAsync();
                            var chunk = await reader.BinaryAsync();
                            if (_tunnels.TryGetValue(id, out var tunnel))
                            {
                                tunnel.Arrived(size, chunk);
                            }

                            break;
                        }

                    case 0x0d:
                        {
                            var id = await reader.VarintAsync();
                            var why = await reader.StringAsync();
                            if (_tunnels.TryRemove(id, out var tunnel))
                            {
                                tunnel.ClosedByRelay(why);
                            }

                            break;
                        }

                    default:
                        reason = $"client: unknown opcode 0x{op:x2}";
                        goto done;
                }
            }
        }
        catch (Exception e)
        {
            reason = $"client: connection lost ({e.GetType().Name}: {e.Message})";
        }

    done:
        foreach (var tunnel in _tunnels.Values)
        {
            tunnel.ClosedByRelay("connection closed");
        }

        _closed.TrySetResult(reason);
    }

    private void HandleRequest(ulong id, byte[] request, TimeSpan timeout)
    {
        var handler = Handler ?? throw new InvalidDataException("a request reached a client that is not a member");
        if (Interlocked.Add(ref _requestUsed, request.Length) > _requestMemory)
        {
            // Over the client's memory allowance: dropped, as the Go library does; the caller times out.
            Interlocked.Add(ref _requestUsed, -request.Length);
            return;
        }

        var expires = DateTime.UtcNow + timeout;
        TakenIn.Enqueue((request, expires));
        Interlocked.Increment(ref Queued);
        _ = Task.Run(async () =>
        {
            await _requestThreads.WaitAsync();
            Interlocked.Add(ref _requestUsed, -request.Length);
            try
            {
                if (DateTime.UtcNow >= expires)
                {
                    Interlocked.Decrement(ref Queued);
                    return;
                }

                Interlocked.Increment(ref Executed);
                Interlocked.Decrement(ref Queued);
                string? fault = null;
                var reply = Array.Empty<byte>();
                try
                {
                    reply = await handler.Request(request);
                }
                catch (Exception e)
                {
                    fault = e.Message;
                }

                await SendAsync(w =>
                {
                    w.Byte(0x05);
                    w.Varint(id);
                    w.Bool(fault is null);
                    if (fault is null)
                    {
                        w.Binary(reply);
                    }
                    else
                    {
                        w.String(fault);
                    }
                });
            }
            finally
            {
                _requestThreads.Release();
            }
        });
    }

    /// <summary>A tunnel end at the client: chunks, allowance both ways, a message's continuation chunks sent
    /// regardless of allowance, an incomplete message discarded when a new one starts.</summary>
    internal sealed class ClientTunnel(RelayTestClient client, ulong id)
    {
        private readonly Channel<byte[]> _arrived = Channel.CreateUnbounded<byte[]>();
        private readonly SemaphoreSlim _granted = new(0);
        private long _allowance;
        private byte[]? _building;
        private int _filled;

        public int ChunkLimit { get; set; }

        public string? CloseReason { get; private set; }

        public long Allowance => Volatile.Read(ref _allowance);

        /// <summary>Sends a message; false when its first chunk's allowance did not come within the timeout (a later
        /// chunk's lack of allowance also gives up, part-way, as a stalled sender does).</summary>
        public async Task<bool> SendAsync(byte[] message, TimeSpan timeout, bool waitForEveryChunk = false)
        {
            using var deadline = new CancellationTokenSource(timeout);
            for (var offset = 0; offset < message.Length || offset == 0; )
            {
                var length = Math.Min(ChunkLimit, message.Length - offset);
                if (offset == 0 || waitForEveryChunk)
                {
                    while (Volatile.Read(ref _allowance) < length)
                    {
                        try
                        {
                            await _granted.WaitAsync(deadline.Token);
                        }
                        catch (OperationCanceledException)
                        {
                            return false;
                        }
                    }
                }

                Interlocked.Add(ref _allowance, -length);
                var size = offset == 0 ? message.Length : 0;
                var chunk = message.AsMemory(offset, length);
                await client.SendAsync(w => { w.Byte(0x0c); w.Varint(id); w.Varint((ulong)size); w.Binary(chunk.Span); });
                offset += length;
                if (length == 0)
                {
                    break;
                }
            }

            return true;
        }

        public async Task<byte[]?> ReceiveAsync(TimeSpan timeout)
        {
            try
            {
                var message = await _arrived.Reader.ReadAsync().AsTask().WaitAsync(timeout);
                await client.SendAsync(w => { w.Byte(0x0b); w.Varint(id); w.Varint((ulong)message.Length); });
                return message;
            }
            catch (ChannelClosedException)
            {
                return null;
            }
        }

        public Task CloseAsync() => client.SendAsync(w => { w.Byte(0x0d); w.Varint(id); });

        internal void Grant(long bytes)
        {
            Interlocked.Add(ref _allowance, bytes);
            _granted.Release();
        }

        internal void Arrived(int size, byte[] chunk)
        {
            if (size != 0)
            {
                if (_building is not null)
                {
                    // A message given up part-way: its room goes back to the relay.
                    var discarded = _filled;
                    _ = client.SendAsync(w => { w.Byte(0x0b); w.Varint(id); w.Varint((ulong)discarded); });
                }

                _building = new byte[size];
                _filled = 0;
            }

            if (_building is null)
            {
                if (size == 0 && chunk.Length == 0)
                {
                    _arrived.Writer.TryWrite([]);
                }

                return;
            }

            chunk.CopyTo(_building, _filled);
            _filled += chunk.Length;
            if (_filled == _building.Length)
            {
                _arrived.Writer.TryWrite(_building);
                _building = null;
            }
        }

        internal void ClosedByRelay(string reason)
        {
            CloseReason ??= reason;
            _arrived.Writer.TryComplete();
        }
    }

    internal sealed class FieldWriter
    {
        public ArrayBufferWriter<byte> Buffer { get; } = new();

        public void Byte(byte b)
        {
            Buffer.GetSpan(1)[0] = b;
            Buffer.Advance(1);
        }

        public void Bool(bool b) => Byte(b ? (byte)1 : (byte)0);

        public void Varint(ulong v)
        {
            while (v > 127)
            {
                Byte((byte)(128 + (v % 128)));
                v /= 128;
            }

            Byte((byte)v);
        }

        public void Binary(ReadOnlySpan<byte> data)
        {
            Varint((ulong)data.Length);
            Buffer.Write(data);
        }

        public void String(string s) => Binary(Encoding.UTF8.GetBytes(s));
    }

    private sealed class FieldReader(Stream stream)
    {
        private readonly BufferedStream _stream = new(stream, 64 * 1024);
        private readonly byte[] _one = new byte[1];

        public async Task<byte> ByteAsync()
        {
            await _stream.ReadExactlyAsync(_one);
            return _one[0];
        }

        public async Task<bool> BoolAsync() => await ByteAsync() switch
        {
            0 => false,
            1 => true,
            var b => throw new InvalidDataException($"bad bool {b}"),
        };

        public async Task<ulong> VarintAsync()
        {
            ulong value = 0;
            for (var shift = 0; ; shift += 7)
            {
                var b = await ByteAsync();
                value += (ulong)(b & 127) << shift;
                if (b <= 127)
                {
                    return value;
                }
            }
        }

        public async Task<byte[]> BinaryAsync()
        {
            var data = new byte[(int)await VarintAsync()];
            await _stream.ReadExactlyAsync(data);
            return data;
        }

        public async Task<string> StringAsync() => Encoding.UTF8.GetString(await BinaryAsync());
    }
}

/// <summary>What a relay test member does: requests (with client-side limits), broadcasts collected, tunnels served.</summary>
internal sealed class RelayMemberHandler
{
    public Func<byte[], Task<byte[]>> Request { get; init; } = request => Task.FromResult(request);

    public int RequestThreads { get; init; } = 16;

    public int RequestMemory { get; init; } = 64 * 1024 * 1024;

    public Func<RelayTestClient.ClientTunnel, Task>? Tunnel { get; init; }

    public Channel<byte[]> Broadcasts { get; } = Channel.CreateUnbounded<byte[]>();
}

internal sealed class RelayDeniedException(string reason) : Exception(reason);

internal sealed class RelayTimeoutException() : Exception("timed out");

internal sealed class RelayFaultException(string fault) : Exception(fault);
