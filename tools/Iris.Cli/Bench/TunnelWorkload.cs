namespace Iris.Cli.Bench;

/// <summary>One tunnel per caller to a cluster's members; a sample is a message's round trip on its tunnel, from sending it
/// to receiving the member's answer (an <c>iris serve --echo</c> member sends each message back).</summary>
internal sealed class TunnelWorkload(IIrisClient iris, BenchSettings settings) : IBenchWorkload
{
    private readonly byte[][] _payloads = [.. Enumerable.Range(0, settings.Clients).Select(_ => Payloads.Random(settings.Size))];
    private ITunnel[] _tunnels = [];

    public string Measures => "tunnel round trip: from sending a message to receiving the member's answer on the same tunnel";

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var opening = Enumerable.Range(0, settings.Clients).Select(_ => iris.OpenTunnelAsync(settings.Target, settings.Timeout, cancellationToken)).ToList();
        try
        {
            await Task.WhenAll(opening);
        }
        finally
        {
            _tunnels = [.. opening.Where(t => t.IsCompletedSuccessfully).Select(t => t.Result)];
        }

        // One round trip on the first before the clock starts: a member that does not answer on tunnels fails here.
        await RoundTripAsync(0, cancellationToken);
    }

    public async Task RoundTripAsync(int caller, CancellationToken cancellationToken)
    {
        var tunnel = _tunnels[caller];
        await tunnel.SendAsync(_payloads[caller], cancellationToken);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(settings.Timeout);
        try
        {
            await tunnel.ReceiveAsync(limit.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"No answer on the tunnel of cluster '{settings.Target}' within {settings.Timeout}: its member may not send messages back (iris serve --echo does).");
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var tunnel in _tunnels)
        {
            await tunnel.DisposeAsync();
        }
    }
}
