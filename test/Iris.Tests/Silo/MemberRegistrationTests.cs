using Iris.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Iris.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Iris.Tests.Silo;

/// <summary>An in-silo member whose registration fails at start (its cluster's member list unreachable for a while, as
/// right after a partition heals) is registered later; the silo does not fail for it.</summary>
public sealed class MemberRegistrationTests
{
    [Fact]
    public async Task A_registration_that_fails_at_start_is_tried_again_with_growing_waits_until_it_succeeds()
    {
        var time = new FakeTimeProvider();
        var client = new FlakyClient(failures: 3);
        var lifecycle = new Lifecycle();
        new MemberRegistration(client, () => false, () => "echo", new Handler(), new MemberOptions(), time, NullLogger<MemberRegistration>.Instance)
            .Participate(lifecycle);

        // The start does not throw: the silo goes on.
        await lifecycle.Observer!.OnStart(CancellationToken.None);
        Assert.Equal(1, client.Attempts);

        // Tried again 1, 2 and 4 s later.
        foreach (var (wait, attempts) in new[] { (1, 2), (2, 3), (4, 4) })
        {
            time.Advance(TimeSpan.FromSeconds(wait) - TimeSpan.FromMilliseconds(1));
            await Task.Delay(50);
            Assert.Equal(attempts - 1, client.Attempts);
            time.Advance(TimeSpan.FromMilliseconds(1));
            await Eventually.HoldsAsync(() => client.Attempts == attempts, $"attempt {attempts} did not come {wait} s after the one before", TimeSpan.FromSeconds(5));
        }

        await Eventually.HoldsAsync(() => client.Registration is not null, "the fourth attempt did not register", TimeSpan.FromSeconds(5));
        await lifecycle.Observer.OnStop(CancellationToken.None);
        Assert.True(client.Registration!.Disposed, "the member did not leave its cluster when the silo stopped");
    }

    [Fact]
    public async Task A_silo_that_stops_while_its_member_is_not_registered_yet_stops_the_retries()
    {
        var time = new FakeTimeProvider();
        var client = new FlakyClient(failures: int.MaxValue);
        var lifecycle = new Lifecycle();
        new MemberRegistration(client, () => false, () => "echo", new Handler(), new MemberOptions(), time, NullLogger<MemberRegistration>.Instance)
            .Participate(lifecycle);
        await lifecycle.Observer!.OnStart(CancellationToken.None);
        await lifecycle.Observer.OnStop(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));
        time.Advance(TimeSpan.FromMinutes(5));
        await Task.Delay(50);
        Assert.Equal(1, client.Attempts);
    }

    [Fact]
    public async Task An_invalid_registration_fails_the_start()
    {
        var lifecycle = new Lifecycle();
        var client = new FlakyClient(failures: 0) { Invalid = true };
        new MemberRegistration(client, () => false, () => "echo", new Handler(), new MemberOptions(), TimeProvider.System, NullLogger<MemberRegistration>.Instance)
            .Participate(lifecycle);
        await Assert.ThrowsAsync<ArgumentException>(() => lifecycle.Observer!.OnStart(CancellationToken.None));
    }

    private sealed class Handler : IClusterHandler
    {
        public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken) => Task.FromResult(request);

        public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken) => Task.CompletedTask;
    }

    /// <summary>An Iris client whose registrations fail a given number of times, as when the record of the cluster's
    /// member list has no majority.</summary>
    private sealed class FlakyClient(int failures) : IIrisClient
    {
        private int _attempts;

        public int Attempts => Volatile.Read(ref _attempts);

        public bool Invalid { get; init; }

        public Registered? Registration { get; private set; }

        public Task<IAsyncDisposable> RegisterAsync(string cluster, IClusterHandler handler, MemberOptions options, CancellationToken cancellationToken = default)
        {
            var attempt = Interlocked.Increment(ref _attempts);
            if (Invalid)
            {
                throw new ArgumentException("invalid cluster name", nameof(cluster));
            }

            if (attempt <= failures)
            {
                return Task.FromException<IAsyncDisposable>(new Iris.Overlay.Records.RecordUnavailableException(Iris.Overlay.NodeKey.FromName(cluster)));
            }

            Registration = new Registered();
            return Task.FromResult<IAsyncDisposable>(Registration);
        }

        public Task<IAsyncDisposable> SubscribeAsync(string topic, ITopicHandler handler, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<byte[]> RequestAsync(string cluster, byte[] request, TimeSpan timeout, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task BroadcastAsync(string cluster, byte[] message, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task PublishAsync(string topic, byte[] message, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<ITunnel> OpenTunnelAsync(string cluster, TimeSpan timeout, CancellationToken cancellationToken = default) => throw new NotSupportedException();
    }

    private sealed class Registered : IAsyncDisposable
    {
        public bool Disposed { get; private set; }

        public ValueTask DisposeAsync()
        {
            Disposed = true;
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>Takes the one observer a participant subscribes.</summary>
    private sealed class Lifecycle : ISiloLifecycle
    {
        public ILifecycleObserver? Observer { get; private set; }

        public int HighestCompletedStage => 0;

        public int LowestStoppedStage => 0;

        public IDisposable Subscribe(string observerName, int stage, ILifecycleObserver observer)
        {
            Observer = observer;
            return new CancellationTokenSource();
        }
    }
}
