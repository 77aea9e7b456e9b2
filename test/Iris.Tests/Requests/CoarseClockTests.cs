using Iris.Calls;
using Microsoft.Extensions.Time.Testing;

namespace Iris.Tests.Requests;

/// <summary>The process's one timer for delays that need not be exact (<see cref="CoarseClock"/>), on a fake clock.</summary>
public sealed class CoarseClockTests
{
    private readonly FakeTimeProvider _time = new();

    [Fact]
    public void A_token_is_cancelled_after_its_delay_and_within_two_ticks_of_it()
    {
        using var clock = new CoarseClock(_time);
        var token = clock.After(TimeSpan.FromSeconds(1));

        _time.Advance(TimeSpan.FromSeconds(1) - TimeSpan.FromMilliseconds(1));
        Assert.False(Cancelled(token, TimeSpan.FromMilliseconds(200)));
        _time.Advance(TimeSpan.FromMilliseconds(1) + (2 * CoarseClock.Resolution));
        Assert.True(Cancelled(token));
    }

    [Fact]
    public void A_token_that_follows_another_is_cancelled_with_it_before_its_delay()
    {
        using var clock = new CoarseClock(_time);
        using var lost = new CancellationTokenSource();
        var token = clock.After(TimeSpan.FromSeconds(1), lost.Token);
        var plain = clock.After(TimeSpan.FromSeconds(1));

        lost.Cancel();
        Assert.True(token.IsCancellationRequested);
        Assert.False(plain.IsCancellationRequested);
    }

    [Fact]
    public void After_a_loss_a_token_due_at_the_same_tick_that_follows_the_next_token_is_not_cancelled_yet()
    {
        // Tokens due at one tick share a source per token they follow: the source of the token lost is spent, and one
        // asked for with the new token must not be it.
        using var clock = new CoarseClock(_time);
        using var first = new CancellationTokenSource();
        using var next = new CancellationTokenSource();
        var before = clock.After(TimeSpan.FromSeconds(1), first.Token);
        first.Cancel();

        var after = clock.After(TimeSpan.FromSeconds(1), next.Token);
        Assert.True(before.IsCancellationRequested);
        Assert.False(after.IsCancellationRequested);
        _time.Advance(TimeSpan.FromSeconds(1) + (2 * CoarseClock.Resolution));
        Assert.True(Cancelled(after));
        Assert.False(next.IsCancellationRequested);
    }

    /// <summary>Whether <paramref name="token"/> is cancelled once the clock's tick has run (it cancels on the thread
    /// pool), waiting for that at most <paramref name="within"/> (5 s).</summary>
    private static bool Cancelled(CancellationToken token, TimeSpan? within = null) =>
        token.IsCancellationRequested || SpinWait.SpinUntil(() => token.IsCancellationRequested, within ?? TimeSpan.FromSeconds(5));
}
