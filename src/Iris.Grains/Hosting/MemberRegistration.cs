using Microsoft.Extensions.Logging;

namespace Iris.Hosting;

/// <summary>
/// Registers an in-silo member once the silo is active (if it has a cluster then), and leaves the cluster when the
/// silo stops; a silo declared dead does not: the rendezvous drop a dead silo's entries at once, and the other silos
/// refuse its calls, which would only hold up its stop until they time out.
/// </summary>
/// <remarks>
/// A registration that fails at start (the cluster's rendezvous cannot reach a majority of its member list's replicas
/// yet, as right after a network partition heals, or the ring is still forming) does not fail the silo: it logs why
/// and tries again, 1 s later and then at twice the wait each time up to <see cref="MaxRetryDelay"/>, until it
/// succeeds or the silo stops. The silo serves everything else meanwhile, and the member takes requests once
/// registered. Only an invalid registration (a bad cluster name or options) fails the start.
/// </remarks>
internal sealed partial class MemberRegistration(
    IIrisClient client, Func<bool> declaredDead, Func<string?> cluster, IClusterHandler handler, MemberOptions options, TimeProvider time, ILogger<MemberRegistration> logger)
    : ILifecycleParticipant<ISiloLifecycle>
{
    /// <summary>The longest wait between two attempts to register.</summary>
    internal static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(30);

    private readonly CancellationTokenSource _stopping = new();
    private Task _retrying = Task.CompletedTask;
    private IAsyncDisposable? _registration;

    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(MemberRegistration), ServiceLifecycleStage.Active + 1, StartAsync, StopAsync);

    private async Task StartAsync(CancellationToken cancellationToken)
    {
        if (cluster() is not { } name)
        {
            return;
        }

        try
        {
            _registration = await client.RegisterAsync(name, handler, options, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not ArgumentException && !cancellationToken.IsCancellationRequested)
        {
            LogRetrying(logger, e, name, TimeSpan.FromSeconds(1));
            _retrying = RetryAsync(name, _stopping.Token);
        }
    }

    private async Task RetryAsync(string name, CancellationToken stopping)
    {
        var delay = TimeSpan.FromSeconds(1);
        for (var attempt = 2; ; attempt++)
        {
            await Task.Delay(delay, time, stopping).ConfigureAwait(false);
            try
            {
                _registration = await client.RegisterAsync(name, handler, options, stopping).ConfigureAwait(false);
                LogRegistered(logger, name, attempt);
                return;
            }
            catch (Exception e) when (!stopping.IsCancellationRequested)
            {
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxRetryDelay.Ticks));
                LogRetrying(logger, e, name, delay);
            }
        }
    }

    private async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _retrying.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (_registration is not null && !declaredDead())
        {
            await _registration.DisposeAsync().ConfigureAwait(false);
        }
    }

    [LoggerMessage(EventId = 130, Level = LogLevel.Warning, Message = "The silo's member of cluster '{Cluster}' could not register; it tries again in {Delay}, and the silo serves everything else meanwhile")]
    private static partial void LogRetrying(ILogger logger, Exception exception, string cluster, TimeSpan delay);

    [LoggerMessage(EventId = 131, Level = LogLevel.Information, Message = "The silo's member of cluster '{Cluster}' registered at attempt {Attempt}")]
    private static partial void LogRegistered(ILogger logger, string cluster, int attempt);
}
