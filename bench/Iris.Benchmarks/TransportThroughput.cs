using System.Net;
using BenchmarkDotNet.Attributes;
using Iris.Overlay;
using Iris.Overlay.Security;
using Iris.Overlay.Transport;

namespace Iris.Benchmarks;

/// <summary>
/// Frames through the TCP overlay transport over loopback: with AES-GCM (as every node runs it) and, as the
/// baseline, the same transport and framing with the protector only copying. Each operation pushes 32 MiB of
/// payload from one transport to another with back-pressure and waits until the last frame has been received.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 10)]
public class TransportThroughput
{
    public const long BytesPerOperation = 32L * 1024 * 1024;

    private Pair _plaintext = null!;
    private Pair _encrypted = null!;

    [Params(1024, 65536)]
    public int FrameSize { get; set; }

    private int Frames => (int)(BytesPerOperation / FrameSize);

    [GlobalSetup]
    public void Setup()
    {
        _plaintext = new Pair(encrypted: false);
        _encrypted = new Pair(encrypted: true);
        _plaintext.SendAsync(16, FrameSize).GetAwaiter().GetResult();
        _encrypted.SendAsync(16, FrameSize).GetAwaiter().GetResult();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _plaintext.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _encrypted.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    [Benchmark(Baseline = true, Description = "plaintext framing")]
    public Task Plaintext() => _plaintext.SendAsync(Frames, FrameSize);

    [Benchmark(Description = "AES-GCM framing")]
    public Task Encrypted() => _encrypted.SendAsync(Frames, FrameSize);

    /// <summary>Two transports on loopback, one sending, one counting what arrives.</summary>
    internal sealed class Pair : IOverlayReceiver, IAsyncDisposable
    {
        private readonly TcpTransport _from;
        private readonly TcpTransport _to;
        private long _received;
        private long _target;
        private TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Pair(bool encrypted)
        {
            var key = NetworkKey.Generate();
            var options = new TcpTransportOptions { PlaintextForBenchmarks = !encrypted, OutboundQueueCapacity = 256 };
            _from = TcpTransport.Start(new IPEndPoint(IPAddress.Loopback, 0), key, options);
            _to = TcpTransport.Start(new IPEndPoint(IPAddress.Loopback, 0), key, options);
            _to.SetReceiver(this);
        }

        public async Task SendAsync(int frames, int size)
        {
            _done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref _target, Interlocked.Read(ref _received) + frames);
            var message = new DirectMessage { Sender = new NodeHandle(NodeKey.Zero, _from.LocalAddress), HopId = 0, Channel = 1, Payload = new byte[size] };
            for (var i = 0; i < frames; i++)
            {
                await _from.SendAsync(_to.LocalAddress, message, CancellationToken.None);
            }

            await _done.Task;
        }

        public void Receive(OverlayMessage message)
        {
            if (Interlocked.Increment(ref _received) == Volatile.Read(ref _target))
            {
                _done.TrySetResult();
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _from.DisposeAsync();
            await _to.DisposeAsync();
        }
    }
}
