namespace Iris.Tests.Support;

/// <summary>Polling with a deadline, for what happens after a call returns: broadcasts and publications return once
/// accepted, and their handlers run afterwards.</summary>
internal static class Eventually
{
    private static readonly TimeSpan DefaultLimit = TimeSpan.FromSeconds(20);

    /// <summary>How long a settled value must stay the same: longer than a delivery repeated by mistake would take.</summary>
    private static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(500);

    /// <summary>Polls until <paramref name="condition"/> holds; fails with <paramref name="what"/> when it does not
    /// within the limit.</summary>
    public static Task HoldsAsync(Func<bool> condition, string what, TimeSpan? limit = null) => HoldsAsync(condition, () => what, limit);

    /// <summary>As <see cref="HoldsAsync(Func{bool}, string, TimeSpan?)"/>, with the failure's description made when it
    /// fails, so it tells the state at the deadline.</summary>
    public static async Task HoldsAsync(Func<bool> condition, Func<string> what, TimeSpan? limit = null)
    {
        var deadline = DateTime.UtcNow + (limit ?? DefaultLimit);
        while (!condition())
        {
            if (DateTime.UtcNow >= deadline)
            {
                Assert.Fail($"not within {limit ?? DefaultLimit}: {what()}");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>As <see cref="HoldsAsync(Func{bool}, string, TimeSpan?)"/>, for a condition that has to do something
    /// (make a call) to be checked.</summary>
    public static async Task HoldsAsync(Func<Task<bool>> condition, string what, TimeSpan? limit = null)
    {
        var deadline = DateTime.UtcNow + (limit ?? DefaultLimit);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"not within {limit ?? DefaultLimit}: {what}");
            await Task.Delay(20);
        }
    }

    /// <summary>Waits until <paramref name="actual"/> equals <paramref name="expected"/>, then checks that it stays so
    /// for a moment: nothing arrives twice.</summary>
    public static async Task SettlesAtAsync<T>(Func<T> actual, T expected, string what, TimeSpan? limit = null)
    {
        await HoldsAsync(() => EqualityComparer<T>.Default.Equals(actual(), expected), () => $"{what}: {actual()} instead of {expected}", limit);
        await Task.Delay(Settle);
        Assert.Equal(expected, actual());
    }
}
