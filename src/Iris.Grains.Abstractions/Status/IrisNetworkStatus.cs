namespace Iris.Status;

/// <summary>The status of every active silo of the network, read at once, and the silos that did not answer in time.</summary>
[GenerateSerializer]
[Immutable]
public sealed record NetworkStatus(
    [property: Id(0)] IReadOnlyList<NodeStatus> Silos, [property: Id(1)] IReadOnlyList<UnreachableSilo> Unreachable, [property: Id(2)] DateTimeOffset Taken);

/// <summary>A silo Orleans lists as active that did not give its status, and why.</summary>
[GenerateSerializer]
[Immutable]
public sealed record UnreachableSilo([property: Id(0)] string Silo, [property: Id(1)] string Error);

/// <summary>Reads the status of the whole network from a silo or an Orleans client.</summary>
public static class IrisNetworkStatus
{
    /// <summary>How long a silo has to answer before it is listed as unreachable.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(3);

    /// <summary>
    /// Asks every silo Orleans lists as active for its status, all at once; a silo that fails or does not answer within
    /// <paramref name="timeout"/> is listed in <see cref="NetworkStatus.Unreachable"/> instead. Silos are ordered by
    /// their ring position.
    /// </summary>
    public static async Task<NetworkStatus> GetAsync(IGrainFactory grains, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(grains);
        var wait = timeout ?? DefaultTimeout;
        var hosts = await grains.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true).WaitAsync(wait, cancellationToken).ConfigureAwait(false);
        var silos = hosts.Keys.Select(s => s.ToParsableString()).ToArray();
        var asks = silos.Select(s => grains.GetGrain<INodeStatusGrain>(s).GetStatus().WaitAsync(wait, cancellationToken)).ToArray();
        try
        {
            await Task.WhenAll(asks).ConfigureAwait(false);
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            // Each failure is reported below, with its silo.
        }

        cancellationToken.ThrowIfCancellationRequested();
        var answered = new List<NodeStatus>();
        var unreachable = new List<UnreachableSilo>();
        for (var i = 0; i < asks.Length; i++)
        {
            if (asks[i].IsCompletedSuccessfully)
            {
                answered.Add(asks[i].Result);
            }
            else
            {
                var error = asks[i].Exception?.GetBaseException();
                unreachable.Add(new UnreachableSilo(silos[i], error is TimeoutException ? $"no answer within {wait.TotalSeconds:0.#} s" : error?.Message ?? "no answer"));
            }
        }

        return new NetworkStatus([.. answered.OrderBy(s => s.RingPosition)], unreachable, DateTimeOffset.UtcNow);
    }
}
