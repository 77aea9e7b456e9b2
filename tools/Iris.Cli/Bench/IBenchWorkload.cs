namespace Iris.Cli.Bench;

/// <summary>The messages of one benchmark pattern, as round trips the runner times.</summary>
internal interface IBenchWorkload : IAsyncDisposable
{
    /// <summary>What one latency sample is, in words, for the report.</summary>
    string Measures { get; }

    /// <summary>Gets ready to send (registers the benchmark's own member or subscriber, opens tunnels). Throws what makes
    /// the benchmark impossible, such as <see cref="NoMembersException"/>.</summary>
    Task StartAsync(CancellationToken cancellationToken);

    /// <summary>Sends one message for caller <paramref name="caller"/> and completes when its round trip has.</summary>
    Task RoundTripAsync(int caller, CancellationToken cancellationToken);
}
