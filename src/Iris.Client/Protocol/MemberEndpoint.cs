namespace Iris.Protocol;

/// <summary>
/// Where the members of a cluster (or subscribers of a topic) in one process are reached, with the capacity offered
/// there: a silo's member host grain, or an Orleans client's member observer.
/// </summary>
[GenerateSerializer]
[Immutable]
internal sealed record MemberEndpoint([property: Id(0)] SiloAddress? Silo, [property: Id(1)] double Capacity)
{
    /// <summary>The client's observer, for members hosted by an Orleans client.</summary>
    [Id(2)]
    public IMemberObserver? Observer { get; init; }

    /// <summary>Identifies the process: the silo address, or the client's registration id.</summary>
    [Id(3)]
    public string Id { get; init; } = Silo?.ToParsableString() ?? string.Empty;

    /// <summary>Whether every member there registered as idempotent (<see cref="MemberOptions.Idempotent"/>): a
    /// request may then run again elsewhere when this process is lost.</summary>
    [Id(4)]
    public bool Idempotent { get; init; }

    /// <summary>The gateway address of a silo's process (its client endpoint, generation 0), when the silo takes
    /// clients: an Orleans client connected to that gateway sends requests for this process over that connection
    /// (<see cref="IMemberHostService"/>).</summary>
    [Id(5)]
    public SiloAddress? Gateway { get; init; }

    /// <summary>
    /// Calls the member host of this process: the silo's member host grain, or the client's observer. An observer is
    /// called from outside any grain, as the silo's hosted client: Orleans sends a client's reply through whichever
    /// gateway the client picks, and a gateway finds a reply's target again by placement, which for a stateless worker
    /// (the cluster and topic grains) means its own silo, not the caller's; the reply would be lost. The hosted client
    /// is found through the client directory from any gateway.
    /// </summary>
    public Task<T> Call<T>(IGrainFactory grains, Func<IMemberHost, Task<T>> call) =>
        Observer is { } observer ? Task.Run(() => call(observer)) : call(HostGrain(grains));

    /// <inheritdoc cref="Call{T}"/>
    public Task Call(IGrainFactory grains, Func<IMemberHost, Task> call) =>
        Observer is { } observer ? Task.Run(() => call(observer)) : call(HostGrain(grains));

    private IMemberHostGrain HostGrain(IGrainFactory grains) => grains.GetGrain<IMemberHostGrain>(Silo!.ToParsableString());
}
