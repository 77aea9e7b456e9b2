using System.Buffers.Binary;
using System.Diagnostics;
using System.Threading.Channels;
using NATS.Client.Core;

namespace Iris.Benchmarks.Paper;

/// <summary>
/// The NATS baseline of the paper harness: request/reply, fan-out and a one-way stream over core NATS
/// (NATS.Client.Core, the nats.net v2 client) through a <see cref="NatsServer"/> on loopback. Each workload warms up
/// for a second, then measures for the given duration; CPU per message counts this process and the server.
/// </summary>
public static class NatsWorkloads
{
    private const int Responders = 4;
    private const int Subscribers = 4;
    /// <summary>How long a cell warms up unless its caller says otherwise.</summary>
    public static readonly TimeSpan WarmUp = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Request/reply: <see cref="Responders"/> responders (a connection each) in queue group "q" on
    /// "echo.&lt;run&gt;" reply with the request's data; <paramref name="callers"/> loops send requests and time each one.
    /// </summary>
    public static async Task<Measurement> RequestAsync(NatsServer server, int payload, int callers, TimeSpan duration, TimeSpan? warmUp = null, CancellationToken cancellationToken = default)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var subject = UniqueSubject("echo");
        var connections = new List<NatsConnection>();
        var responderLoops = new List<Task>();
        try
        {
            for (var i = 0; i < Responders; i++)
            {
                var connection = await ConnectAsync(server);
                connections.Add(connection);
                var subscription = await connection.SubscribeCoreAsync<byte[]>(subject, queueGroup: "q", cancellationToken: stop.Token);
                responderLoops.Add(RespondAsync(subscription, stop.Token));
            }

            // One client connection shared by every caller: nats.net v2 multiplexes requests over one inbox
            // subscription and batches concurrent writes into one socket write. Measured against a connection per
            // caller on the 2-core machine (16 callers, 3 alternating runs): the shared connection cost 85-110 µs of
            // CPU per 16 B request against 140-170 µs, with a lower p50, so it is the stronger baseline.
            var client = await ConnectAsync(server);
            connections.Add(client);
            foreach (var connection in connections)
            {
                await connection.PingAsync(stop.Token);
            }

            var window = new Window();
            var latencies = new LatencySamples();
            var request = new byte[payload];
            Random.Shared.NextBytes(request);
            var loops = Enumerable.Range(0, callers).Select(_ => Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    var start = Stopwatch.GetTimestamp();
                    NatsMsg<byte[]> reply;
                    try
                    {
                        reply = await client.RequestAsync<byte[], byte[]>(subject, request, cancellationToken: stop.Token);
                    }
                    catch (OperationCanceledException) when (stop.IsCancellationRequested)
                    {
                        return;
                    }

                    var elapsed = Stopwatch.GetTimestamp() - start;
                    if (reply.Data is null || reply.Data.Length != payload)
                    {
                        throw new InvalidOperationException($"NATS echo replied with {reply.Data?.Length ?? 0} bytes instead of {payload}.");
                    }

                    if (window.Measuring)
                    {
                        window.Count();
                        latencies.Record(elapsed);
                    }
                }
            }, stop.Token)).ToList();

            var result = await window.RunAsync(server, warmUp ?? WarmUp, duration, payload, latencies);
            await stop.CancelAsync();
            await IgnoreCancellation(loops);
            return result;
        }
        finally
        {
            await stop.CancelAsync();
            await IgnoreCancellation(responderLoops);
            await CloseAsync(connections);
        }
    }

    /// <summary>
    /// Fan-out: one publisher on "fan.&lt;run&gt;", <see cref="Subscribers"/> subscribers (a connection each); per
    /// second counts deliveries summed over the subscribers, latency is per delivery from the timestamp the publisher wrote.
    /// </summary>
    public static Task<Measurement> FanOutAsync(NatsServer server, int payload, TimeSpan duration, TimeSpan? warmUp = null, CancellationToken cancellationToken = default)
        => PublishAsync(server, UniqueSubject("fan"), payload, Subscribers, warmUp ?? WarmUp, duration, cancellationToken);

    /// <summary>
    /// One-way stream: one publisher, one subscriber on "stream.&lt;run&gt;"; the subscriber checks that every
    /// message arrives, in order (sequence numbers), and throws otherwise.
    /// </summary>
    public static Task<Measurement> StreamAsync(NatsServer server, int payload, TimeSpan duration, TimeSpan? warmUp = null, CancellationToken cancellationToken = default)
        => PublishAsync(server, UniqueSubject("stream"), payload, 1, warmUp ?? WarmUp, duration, cancellationToken);

    private static async Task<Measurement> PublishAsync(
        NatsServer server, string subject, int payload, int subscribers, TimeSpan warmUp, TimeSpan duration, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(payload, 16);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var window = new Window();
        var latencies = new LatencySamples();
        var received = new long[subscribers];
        var flow = new FlowControl(received, InFlight(payload));
        var connections = new List<NatsConnection>();
        var loops = new List<Task>();
        try
        {
            for (var i = 0; i < subscribers; i++)
            {
                var connection = await ConnectAsync(server);
                connections.Add(connection);
                var subscription = await connection.SubscribeCoreAsync<NatsMemoryOwner<byte>>(subject, cancellationToken: stop.Token);
                await connection.PingAsync(stop.Token);
                var index = i;
                loops.Add(Task.Run(() => ReceiveAsync(subscription, index, payload, received, flow, window, latencies, stop.Token), stop.Token));
            }

            var publisher = await ConnectAsync(server);
            connections.Insert(0, publisher);
            var publishing = Task.Run(async () =>
            {
                // The publisher owns one buffer and rewrites its header: nats.net copies the payload into its write
                // buffer before PublishAsync completes.
                var message = new byte[payload];
                Random.Shared.NextBytes(message);
                long sequence = 0;
                while (!stop.IsCancellationRequested)
                {
                    if (!await flow.WaitForRoomAsync(sequence, stop.Token))
                    {
                        return;
                    }

                    BinaryPrimitives.WriteInt64LittleEndian(message, Stopwatch.GetTimestamp());
                    BinaryPrimitives.WriteInt64LittleEndian(message.AsSpan(8), sequence);
                    try
                    {
                        await publisher.PublishAsync(subject, message, cancellationToken: stop.Token);
                    }
                    catch (OperationCanceledException) when (stop.IsCancellationRequested)
                    {
                        return;
                    }

                    sequence++;
                }
            }, stop.Token);
            loops.Add(publishing);

            var result = await window.RunAsync(server, warmUp, duration, payload, latencies);
            await stop.CancelAsync();
            await IgnoreCancellation(loops);
            return result;
        }
        finally
        {
            await stop.CancelAsync();
            await IgnoreCancellation(loops);
            await CloseAsync(connections);
        }
    }

    /// <summary>Closes a cell's connections together, waiting a second at most: the figures are already taken. A
    /// server too busy to confirm a subscription's removal, or a publisher's last flush, in time (the client's own 5-s
    /// timeout, which a publisher's close met now and then) does not hold up the run; the close goes on meanwhile.</summary>
    private static async Task CloseAsync(IEnumerable<NatsConnection> connections)
    {
        var closing = Task.WhenAll(connections.Select(async connection =>
        {
            try
            {
                await connection.DisposeAsync();
            }
            catch (NatsTimeoutException)
            {
                // The connection is closed anyway.
            }
        }));
        await Task.WhenAny(closing, Task.Delay(TimeSpan.FromSeconds(1)));
    }

    private static async Task ReceiveAsync(
        INatsSub<NatsMemoryOwner<byte>> subscription,
        int index,
        int payload,
        long[] received,
        FlowControl flow,
        Window window,
        LatencySamples latencies,
        CancellationToken cancellationToken)
    {
        await using var _ = subscription;
        var reader = subscription.Msgs;
        long expected = 0;
        while (await reader.WaitToReadAsync(cancellationToken))
        {
            while (reader.TryRead(out var msg))
            {
                using var data = msg.Data;
                var now = Stopwatch.GetTimestamp();
                var span = data.Span;
                if (span.Length != payload)
                {
                    throw new InvalidOperationException($"NATS subscriber {index} received {span.Length} bytes instead of {payload}.");
                }

                var sequence = BinaryPrimitives.ReadInt64LittleEndian(span[8..]);
                if (sequence != expected)
                {
                    throw new InvalidOperationException(
                        $"NATS subscriber {index} received message {sequence} where {expected} was expected: a message was lost or reordered.");
                }

                expected++;
                Volatile.Write(ref received[index], expected);
                flow.Received();
                if (window.Measuring)
                {
                    window.Count();
                    latencies.Record(now - BinaryPrimitives.ReadInt64LittleEndian(span));
                }
            }
        }
    }

    private static async Task RespondAsync(INatsSub<byte[]> subscription, CancellationToken cancellationToken)
    {
        await using var _ = subscription;
        var reader = subscription.Msgs;
        while (await reader.WaitToReadAsync(cancellationToken))
        {
            while (reader.TryRead(out var msg))
            {
                await msg.ReplyAsync(msg.Data, cancellationToken: cancellationToken);
            }
        }
    }

    // A subject per run: messages a previous run's publisher still had buffered must not reach this run's subscribers.
    private static string UniqueSubject(string prefix) => $"{prefix}.{Guid.NewGuid():N}";

    private static async Task<NatsConnection> ConnectAsync(NatsServer server)
    {
        var connection = new NatsConnection(NatsOpts.Default with
        {
            Url = server.Url,
            Name = "iris-paper-bench",
            // A full subscription channel holds the reader back instead of dropping messages: with the publisher's
            // window below it never fills, and if it did a loss would throw rather than flatter the figures.
            SubPendingChannelFullMode = BoundedChannelFullMode.Wait,
        });
        await connection.ConnectAsync();
        return connection;
    }

    /// <summary>How many messages a publisher keeps ahead of its slowest subscriber (NATS) or unaccepted (Iris'
    /// broadcast and publish cells): 1 MiB of them, at least 16 and at most 4,096.</summary>
    /// <remarks>Measured on the 2-core machine: a 16384-message window gave NATS no more throughput (within noise) but
    /// three times the latency (it is queueing time), 1024 messages lost throughput at 16 B. Far below the server's
    /// 64 MB pending limit for a slow consumer.</remarks>
    internal static int InFlight(int payload) => Math.Clamp((1 << 20) / payload, 16, 4096);

    private static async Task IgnoreCancellation(IEnumerable<Task> tasks)
    {
        try
        {
            await Task.WhenAll(tasks);
        }
        catch (OperationCanceledException)
        {
        }
        catch (ChannelClosedException)
        {
        }
    }

    /// <summary>Bounds the publisher to a number of messages beyond what the slowest subscriber has received.</summary>
    private sealed class FlowControl(long[] received, int inFlight)
    {
        private readonly SemaphoreSlim room = new(0);
        private int waiting;

        public async ValueTask<bool> WaitForRoomAsync(long sent, CancellationToken cancellationToken)
        {
            while (sent - Slowest() >= inFlight)
            {
                Volatile.Write(ref waiting, 1);
                if (sent - Slowest() < inFlight)
                {
                    break;
                }

                try
                {
                    // The timeout covers a wake-up lost between the check and the wait.
                    await room.WaitAsync(5, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return false;
                }
            }

            return true;
        }

        public void Received()
        {
            if (Volatile.Read(ref waiting) == 1 && Interlocked.Exchange(ref waiting, 0) == 1)
            {
                room.Release();
            }
        }

        private long Slowest()
        {
            var slowest = long.MaxValue;
            foreach (ref var count in received.AsSpan())
            {
                slowest = Math.Min(slowest, Volatile.Read(ref count));
            }

            return slowest;
        }
    }

    /// <summary>The measurement window: counts messages while open and turns counts and CPU into a <see cref="Measurement"/>.</summary>
    private sealed class Window
    {
        private volatile bool measuring;
        private long messages;

        public bool Measuring => measuring;

        public void Count() => Interlocked.Increment(ref messages);

        public async Task<Measurement> RunAsync(NatsServer server, TimeSpan warmUp, TimeSpan duration, int payload, LatencySamples latencies)
        {
            await Task.Delay(warmUp);
            var cpuBefore = Environment.CpuUsage.TotalTime + server.CpuTime;
            var start = Stopwatch.GetTimestamp();
            measuring = true;
            await Task.Delay(duration);
            measuring = false;
            var seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            var cpu = Environment.CpuUsage.TotalTime + server.CpuTime - cpuBefore;
            var count = Interlocked.Read(ref messages);
            if (count == 0)
            {
                throw new InvalidOperationException("No NATS message was delivered in the measurement window.");
            }

            var (p50, p99) = latencies.Percentiles();
            return new Measurement(
                PerSec: count / seconds,
                MbPerSec: count * (double)payload / 1e6 / seconds,
                P50Ms: p50,
                P99Ms: p99,
                CpuUsPerMsg: cpu.TotalMicroseconds / count);
        }
    }

    /// <summary>A uniform sample (reservoir) of latencies in Stopwatch ticks, safe to record from several threads.</summary>
    private sealed class LatencySamples
    {
        private readonly long[] samples = new long[1 << 20];
        private long seen;

        public void Record(long ticks)
        {
            var index = Interlocked.Increment(ref seen) - 1;
            if (index < samples.Length)
            {
                samples[index] = ticks;
                return;
            }

            var slot = Random.Shared.NextInt64(index + 1);
            if (slot < samples.Length)
            {
                samples[slot] = ticks;
            }
        }

        public (double P50Ms, double P99Ms) Percentiles()
        {
            var count = (int)Math.Min(Interlocked.Read(ref seen), samples.Length);
            Array.Sort(samples, 0, count);
            double At(double quantile) => samples[(int)(quantile * (count - 1))] * 1000.0 / Stopwatch.Frequency;
            return (At(0.50), At(0.99));
        }
    }
}
