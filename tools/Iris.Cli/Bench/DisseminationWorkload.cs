using System.Buffers.Binary;
using System.Collections.Concurrent;

namespace Iris.Cli.Bench;

/// <summary>
/// Broadcasts to a cluster or publications on a topic. The benchmark receives its own messages on a second Orleans
/// client of its own (<paramref name="observer"/>): a member of the cluster, or a subscriber of the topic, whose
/// deliveries come through the silos like any other process's (a member in the sending client would get them at once,
/// without leaving the process). A sample is from the broadcast or publish call to that delivery. Every other member or
/// subscriber gets the messages too.
/// </summary>
internal sealed class DisseminationWorkload(IIrisClient sender, IIrisClient observer, BenchSettings settings) : IBenchWorkload
{
    /// <summary>Each message starts with the run's nonce and its number, so that the benchmark tells its own messages
    /// from other senders'.</summary>
    public const int HeaderBytes = 16;

    private readonly long _nonce = System.Random.Shared.NextInt64();
    private readonly ConcurrentDictionary<long, TaskCompletionSource> _waiting = new();
    private long _sent;
    private IAsyncDisposable? _registration;

    private bool IsBroadcast => settings.Pattern == BenchPattern.Broadcast;

    public string Measures => IsBroadcast
        ? "broadcast delivery: from the broadcast call to its delivery to the benchmark's own member, a second Orleans client in this process"
        : "publication delivery: from the publish call to its delivery to the benchmark's own subscriber, a second Orleans client in this process";

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var receiver = new Receiver(this);
        _registration = IsBroadcast
            ? await observer.RegisterAsync(settings.Target, receiver, new MemberOptions(), cancellationToken)
            : await observer.SubscribeAsync(settings.Target, receiver, cancellationToken);

        // One message before the clock starts: it fails here if deliveries do not come back.
        await RoundTripAsync(0, cancellationToken);
    }

    public async Task RoundTripAsync(int caller, CancellationToken cancellationToken)
    {
        var number = Interlocked.Increment(ref _sent);
        var message = Payloads.Random(settings.Size);
        BinaryPrimitives.WriteInt64LittleEndian(message, _nonce);
        BinaryPrimitives.WriteInt64LittleEndian(message.AsSpan(8), number);
        var delivered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _waiting[number] = delivered;
        try
        {
            if (IsBroadcast)
            {
                await sender.BroadcastAsync(settings.Target, message, cancellationToken);
            }
            else
            {
                await sender.PublishAsync(settings.Target, message, cancellationToken);
            }

            await delivered.Task.WaitAsync(settings.Timeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"A message to {(IsBroadcast ? "cluster" : "topic")} '{settings.Target}' did not reach the benchmark's own {(IsBroadcast ? "member" : "subscriber")} within {settings.Timeout}.");
        }
        finally
        {
            _waiting.TryRemove(number, out _);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_registration is not null)
        {
            await _registration.DisposeAsync();
        }
    }

    private void Delivered(byte[] message)
    {
        if (message.Length >= HeaderBytes
            && BinaryPrimitives.ReadInt64LittleEndian(message) == _nonce
            && _waiting.TryGetValue(BinaryPrimitives.ReadInt64LittleEndian(message.AsSpan(8)), out var waiting))
        {
            waiting.TrySetResult();
        }
    }

    /// <summary>The benchmark's own member or subscriber. As a member it also answers requests (echo), since callers of
    /// the cluster may pick it while it is registered.</summary>
    private sealed class Receiver(DisseminationWorkload workload) : IClusterHandler, ITopicHandler
    {
        public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken) => Task.FromResult(request);

        public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken)
        {
            workload.Delivered(message);
            return Task.CompletedTask;
        }

        public Task HandlePublishAsync(byte[] message, CancellationToken cancellationToken)
        {
            workload.Delivered(message);
            return Task.CompletedTask;
        }
    }
}
