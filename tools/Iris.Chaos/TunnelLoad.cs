using System.Runtime.CompilerServices;

namespace Iris.Chaos;

/// <summary>Long tunnels to cluster <c>chaos</c>, each sending checksummed sequence numbers at a steady pace that the
/// member echoes back. A tunnel that fails is counted (by error type and close reason) and replaced by a new one. At
/// the end each tunnel still open is drained and closed: for those, messages that never came back are lost, and
/// messages that came back after a later one are reordered.</summary>
internal sealed class TunnelLoad(IIrisClient iris)
{
    private static readonly TimeSpan OpenTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan DrainLimit = TimeSpan.FromSeconds(10);
    private const int MessagesPerTick = 2;
    private readonly Lock _gate = new();
    private long _opened;
    private long _sent;
    private long _lost;
    private long _reordered;
    private long _reorderedBeforeFailure;
    private long _duplicated;
    private long _corrupt;
    private long _closedCleanly;

    public Tally Failures { get; } = new();

    public Tally OpenFailures { get; } = new();

    public long Opened => Interlocked.Read(ref _opened);

    public long FailedWithError => Failures.Snapshot().Where(f => !f.Key.StartsWith("untyped:", StringComparison.Ordinal)).Sum(f => f.Value);

    public long Sent => Interlocked.Read(ref _sent);

    public long Lost => Interlocked.Read(ref _lost);

    public long Reordered => Interlocked.Read(ref _reordered);

    public long ReorderedBeforeFailure => Interlocked.Read(ref _reorderedBeforeFailure);

    public long Duplicated => Interlocked.Read(ref _duplicated);

    public long Corrupt => Interlocked.Read(ref _corrupt);

    public long ClosedCleanly => Interlocked.Read(ref _closedCleanly);

    public Task RunAsync(int tunnels, CancellationToken stop) =>
        Task.WhenAll(Enumerable.Range(0, tunnels).Select(_ => Task.Run(() => KeepTunnelAsync(stop), CancellationToken.None)));

    private static string Describe(Exception e) => e switch
    {
        TunnelClosedException closed => $"{nameof(TunnelClosedException)}.{closed.Reason}",
        IrisException => e.GetType().Name,
        _ => "untyped:" + e.GetType().FullName,
    };

    private async Task KeepTunnelAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            var open = iris.OpenTunnelAsync(MemberProgram.Cluster, OpenTimeout, CancellationToken.None);
            ITunnel tunnel;
            try
            {
                tunnel = await open.WaitAsync(OpenTimeout + TimeSpan.FromSeconds(2), CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                OpenFailures.Add(e is TimeoutException && !open.IsCompleted ? "unanswered" : Describe(e));
                await Task.Delay(500, CancellationToken.None).ConfigureAwait(false);
                continue;
            }

            Interlocked.Increment(ref _opened);
            try
            {
                await RunTunnelAsync(tunnel, stop).ConfigureAwait(false);
            }
            finally
            {
                await DisposeWithinAsync(tunnel).ConfigureAwait(false);
            }
        }
    }

    private static async Task DisposeWithinAsync(ITunnel tunnel)
    {
        try
        {
            await tunnel.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IrisException or TimeoutException)
        {
            // Closed or failed already; its outcome is counted.
        }
    }

    private async Task RunTunnelAsync(ITunnel tunnel, CancellationToken stop)
    {
        var check = new TunnelCheck();
        var closing = new StrongBox<bool>();
        var receiving = Task.Run(() => ReceiveAsync(tunnel, check, closing), CancellationToken.None);
        long sent = 0;
        Exception? failure = null;
        try
        {
            while (!stop.IsCancellationRequested && !receiving.IsCompleted)
            {
                for (var i = 0; i < MessagesPerTick; i++)
                {
                    await tunnel.SendAsync(TunnelMessage.Create(sent), stop).ConfigureAwait(false);
                    sent++;
                }

                await Task.Delay(20, stop).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // The run is over: a send cancelled while waiting for credit was not sent.
        }
        catch (Exception e)
        {
            failure = e;
        }

        Interlocked.Add(ref _sent, sent);

        // Drained when everything sent came back, or the receive side failed, or the limit passed.
        var deadline = DateTime.UtcNow + DrainLimit;
        while (failure is null && !receiving.IsCompleted && check.Received < sent && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50, CancellationToken.None).ConfigureAwait(false);
        }

        if (receiving.IsCompleted)
        {
            failure ??= await receiving.ConfigureAwait(false);
        }

        lock (_gate)
        {
            closing.Value = true;
        }

        if (failure is null)
        {
            try
            {
                await tunnel.CloseAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
                Interlocked.Increment(ref _closedCleanly);
            }
            catch (Exception e) when (e is IrisException or TimeoutException)
            {
                // Everything came back already; a close that fails now is not a loss.
            }
        }

        Interlocked.Add(ref _duplicated, check.Duplicated);
        Interlocked.Add(ref _corrupt, check.Corrupt);
        if (failure is null)
        {
            Interlocked.Add(ref _lost, sent - check.Received);
            Interlocked.Add(ref _reordered, check.Reordered);
        }
        else
        {
            Failures.Add(Describe(failure));
            Interlocked.Add(ref _reorderedBeforeFailure, check.Reordered);
        }
    }

    private async Task<Exception?> ReceiveAsync(ITunnel tunnel, TunnelCheck check, StrongBox<bool> closing)
    {
        try
        {
            while (true)
            {
                check.Add(await tunnel.ReceiveAsync(CancellationToken.None).ConfigureAwait(false));
            }
        }
        catch (Exception e)
        {
            lock (_gate)
            {
                return closing.Value ? null : e;
            }
        }
    }
}
