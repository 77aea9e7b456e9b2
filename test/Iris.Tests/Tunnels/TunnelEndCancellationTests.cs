using Iris.Calls;
using Iris.Protocol;
using Iris.Tunnels;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Iris.Tests.Tunnels;

/// <summary>A caller's cancellation still ends a wait on an open, empty tunnel; only what has arrived, or the
/// tunnel's end, comes before it.</summary>
public sealed class TunnelEndCancellationTests : IAsyncDisposable
{
    private const string Member = "member-process";

    private readonly LocalTunnels _tunnels = new(
        null!, Options.Create(new TunnelOptions { MaxMessageBytes = 200 * 1024 }), new CallPolicy(TimeProvider.System, new Random(1)), NullLogger<LocalTunnels>.Instance);

    private TunnelEnd Create()
    {
        var end = _tunnels.Create("c");
        end.Expect(Member);
        return end;
    }

    public ValueTask DisposeAsync() => _tunnels.DisposeAsync();

    private static TunnelFrame Frame(long sequence, TunnelFrameKind kind, int size, byte fill = 0) =>
        new(sequence, kind, Enumerable.Repeat(fill, size).ToArray());

    [Fact]
    public async Task A_caller_cancelling_a_wait_on_an_open_empty_tunnel_gets_OperationCanceledException()
    {
        var end = Create();
        using var cancel = new CancellationTokenSource();
        var waiting = end.ReceiveAsync(cancel.Token).AsTask();
        await Task.Delay(20);
        Assert.False(waiting.IsCompleted);
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting.WaitAsync(TimeSpan.FromSeconds(5)));

        // The tunnel is still usable: a message sent afterwards is received.
        _tunnels.OnData(Member, end.Id, [Frame(0, TunnelFrameKind.Final, 1, 7)]);
        Assert.Equal([7], await end.ReceiveAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task An_already_cancelled_token_takes_what_arrived_then_throws_OperationCanceledException_while_open()
    {
        var end = Create();
        _tunnels.OnData(Member, end.Id, [Frame(0, TunnelFrameKind.Final, 1, 1), Frame(1, TunnelFrameKind.Final, 1, 2)]);
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();
        Assert.Equal([1], await end.ReceiveAsync(cancel.Token));
        Assert.Equal([2], await end.ReceiveAsync(cancel.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => end.ReceiveAsync(cancel.Token).AsTask().WaitAsync(TimeSpan.FromSeconds(5)));
    }
}
