using Iris.Calls;
using Iris.Protocol;
using Iris.Tunnels;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Iris.Tests.Tunnels;

/// <summary>The receiving half of a tunnel end on its own: frames in any order, repeated, chunked, aborted.</summary>
public sealed class TunnelEndTests : IAsyncDisposable
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
    public async Task Frames_out_of_order_and_repeated_make_each_message_once_in_order()
    {
        var end = Create();
        var frames = Enumerable.Range(0, 50).Select(i => Frame(i, TunnelFrameKind.Final, 4, (byte)i)).ToArray();
        var shuffled = frames.Concat(frames.Take(10)).OrderBy(_ => Random.Shared.Next()).ToArray();
        foreach (var batch in shuffled.Chunk(7))
        {
            Assert.Equal(TunnelStatus.Open, _tunnels.OnData(Member, end.Id, batch));
        }

        for (var i = 0; i < 50; i++)
        {
            Assert.Equal(Enumerable.Repeat((byte)i, 4), await end.ReceiveAsync());
        }

        Assert.Equal(0, end.BufferedBytes);
        Assert.False(end.ReceiveAsync().IsCompleted);
    }

    [Fact]
    public async Task Chunks_are_reassembled_an_aborted_message_is_dropped_and_a_close_ends_the_stream()
    {
        var end = Create();
        _tunnels.OnData(Member, end.Id, [
            Frame(3, TunnelFrameKind.Chunk, 1000, 3),
            Frame(0, TunnelFrameKind.Chunk, 64 * 1024, 1),
            Frame(2, TunnelFrameKind.Final, 10, 2),
            Frame(1, TunnelFrameKind.Chunk, 64 * 1024, 1),
            Frame(5, TunnelFrameKind.Final, 5, 5),
            Frame(4, TunnelFrameKind.Abort, 0),
            Frame(6, TunnelFrameKind.Close, 0),
        ]);

        var first = await end.ReceiveAsync();
        Assert.Equal((128 * 1024) + 10, first.Length);
        Assert.Equal(1, first[0]);
        Assert.Equal(2, first[^1]);
        Assert.Equal(Enumerable.Repeat((byte)5, 5), await end.ReceiveAsync());
        var closed = await Assert.ThrowsAsync<TunnelClosedException>(async () => await end.ReceiveAsync());
        Assert.Equal(TunnelCloseReason.ClosedByPeer, closed.Reason);
        Assert.Equal(0, _tunnels.Count);
    }

    [Fact]
    public async Task A_message_over_the_receivers_limit_closes_the_tunnel_after_what_came_before()
    {
        var end = Create();
        _tunnels.OnData(Member, end.Id, [Frame(0, TunnelFrameKind.Final, 1), .. Enumerable.Range(1, 4).Select(i => Frame(i, TunnelFrameKind.Chunk, 64 * 1024))]);
        Assert.Single(await end.ReceiveAsync());
        var error = await Assert.ThrowsAsync<TunnelClosedException>(async () => await end.ReceiveAsync());
        Assert.Equal(TunnelCloseReason.MessageTooLarge, error.Reason);
        Assert.Contains("MaxMessageBytes", error.Message);
        Assert.Equal(TunnelStatus.Unknown, _tunnels.OnData(Member, end.Id, [Frame(5, TunnelFrameKind.Final, 1)]));
    }

    [Fact]
    public async Task Frames_from_a_process_the_opener_is_not_asking_are_answered_abandoned_and_never_received()
    {
        var end = Create();
        Assert.Equal(TunnelStatus.Abandoned, _tunnels.OnData("another-member", end.Id, [Frame(0, TunnelFrameKind.Final, 3, 9)]));
        Assert.Equal([TunnelStatus.Abandoned], _tunnels.Statuses("another-member", [end.Id]));
        Assert.Equal(TunnelStatus.Open, _tunnels.OnData(Member, end.Id, [Frame(0, TunnelFrameKind.Final, 2, 1)]));
        Assert.Equal([1, 1], await end.ReceiveAsync());

        // Asking another member starts receiving afresh: what the first one sent never reaches the application.
        var fresh = Create();
        _tunnels.OnData(Member, fresh.Id, [Frame(0, TunnelFrameKind.Final, 2, 7)]);
        fresh.Expect("second-member");
        Assert.Equal(TunnelStatus.Abandoned, _tunnels.OnData(Member, fresh.Id, [Frame(1, TunnelFrameKind.Final, 2, 7)]));
        _tunnels.OnData("second-member", fresh.Id, [Frame(0, TunnelFrameKind.Final, 1, 5)]);
        Assert.Equal([5], await fresh.ReceiveAsync());
        Assert.Equal(0, fresh.BufferedBytes);
    }

    [Fact]
    public async Task A_reader_waiting_with_the_handlers_token_takes_every_message_of_the_batch_that_closes_the_tunnel()
    {
        // A member's handler reads with the token it was given, which is cancelled when the tunnel closes. The opener's
        // last batch carries messages and then its close: they must all reach the handler, then the stream ends.
        // Before: the close cancelled the token while the handler waited, and the batch's messages were lost (the
        // opener's CloseAsync had returned: it was told they were delivered).
        for (var round = 0; round < 50; round++)
        {
            var end = Create();
            var reading = Task.Run(async () =>
            {
                var taken = new List<byte>();
                await foreach (var message in end.ReadAllAsync(end.Closing))
                {
                    taken.Add(message[0]);
                }

                return taken;
            });

            // Let the reader wait for the first arrival.
            await Task.Delay(5);
            _tunnels.OnData(Member, end.Id, [.. Enumerable.Range(0, 20).Select(i => Frame(i, TunnelFrameKind.Final, 1, (byte)i)), Frame(20, TunnelFrameKind.Close, 0)]);
            Assert.Equal(Enumerable.Range(0, 20).Select(i => (byte)i), await reading.WaitAsync(TimeSpan.FromSeconds(10)));
        }
    }

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
