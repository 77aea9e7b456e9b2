namespace Iris.Calls;

/// <summary>
/// Tells an Orleans client's calls that one of its gateway connections closed. Orleans does not fail the calls already
/// sent through a gateway whose connection drops: their answers can never come, and each waits out its response
/// timeout. Iris' calls that carry an id (requests, tunnel opens) wait on <see cref="Token"/> too, and on a loss ask
/// again at once, with the same id, through the gateways left: the copy joins the run at the member, or gets its stored
/// answer, or runs it there if the first never arrived. A silo has no gateways of its own and never signals.
/// </summary>
internal sealed class GatewayLoss : IClusterConnectionStatusObserver
{
    private CancellationTokenSource _current = new();

    /// <summary>Cancelled when a gateway connection is lost after it was read; a fresh one is given out meanwhile.</summary>
    public CancellationToken Token => Volatile.Read(ref _current).Token;

    /// <summary>How many losses were signalled (for tests and diagnostics).</summary>
    public int Losses => Volatile.Read(ref _losses);

    private int _losses;

    public void NotifyGatewayCountChanged(int currentNumberOfGateways, int previousNumberOfGateways, bool connectionRecovered)
    {
        if (currentNumberOfGateways < previousNumberOfGateways)
        {
            Signal();
        }
    }

    public void NotifyClusterConnectionLost() => Signal();

    /// <summary>Every call waiting on the token read before now asks again.</summary>
    public void Signal()
    {
        // Not disposed: a caller may have read it a moment ago and be about to take its token.
        var lost = Interlocked.Exchange(ref _current, new CancellationTokenSource());
        Interlocked.Increment(ref _losses);
        lost.Cancel();
    }
}
