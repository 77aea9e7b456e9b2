namespace Iris.Cli.Bench;

/// <summary>Requests to a cluster's members; a sample is a request's round trip, from the call to its reply.</summary>
internal sealed class RequestWorkload(IIrisClient iris, BenchSettings settings) : IBenchWorkload
{
    private readonly byte[][] _payloads = [.. Enumerable.Range(0, settings.Clients).Select(_ => Payloads.Random(settings.Size))];

    public string Measures => "request round trip: from the call to its reply";

    // One request before the clock starts: a cluster without members fails here, at once, with Iris' own message.
    public Task StartAsync(CancellationToken cancellationToken) => iris.RequestAsync(settings.Target, _payloads[0], settings.Timeout, cancellationToken);

    public Task RoundTripAsync(int caller, CancellationToken cancellationToken) => iris.RequestAsync(settings.Target, _payloads[caller], settings.Timeout, cancellationToken);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
