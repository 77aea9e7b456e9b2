namespace Iris.Tests.TestClusters;

/// <summary>
/// A silo's incoming call filter that can hold the Scribe tree hops (<c>SendDown</c>) coming into the silo, as a silo
/// stalled by a long pause or behind a link that stopped moving would, until released or for at most an hour. Idle
/// unless a test holds it; it also counts the hand-overs of broadcasts and publications to rendezvous grains here.
/// </summary>
internal sealed class HeldHops : IIncomingGrainCallFilter
{
    private TaskCompletionSource? _released;

    /// <summary>Tree hops into this silo that are being held now.</summary>
    public int Holding;

    /// <summary><c>Disseminate</c> calls that came into this silo (each carries one or more messages).</summary>
    public int HandOvers;

    public void Hold() => Interlocked.CompareExchange(ref _released, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), null);

    public void Release() => Interlocked.Exchange(ref _released, null)?.TrySetResult();

    public async Task Invoke(IIncomingGrainCallContext context)
    {
        if (context.InterfaceMethod?.Name == "Disseminate")
        {
            Interlocked.Increment(ref HandOvers);
        }

        if (context.InterfaceMethod?.Name == "SendDown" && Volatile.Read(ref _released) is { } released)
        {
            Interlocked.Increment(ref Holding);
            try
            {
                await released.Task.WaitAsync(TimeSpan.FromHours(1));
            }
            finally
            {
                Interlocked.Decrement(ref Holding);
            }
        }

        await context.Invoke();
    }
}
