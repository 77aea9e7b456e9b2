using Iris.Hosting;
using Iris.Members;
using Iris.Tunnels;
using Microsoft.Extensions.Logging.Abstractions;

namespace Iris.Tests.Tunnels;

/// <summary>The receiving half of a tunnel end on its own: frames in any order, repeated, chunked, aborted.</summary>
public sealed class TunnelEndTests : IAsyncDisposable
{
    private readonly LocalTunnels _tunnels = new(null!, new LocalMembers(), new TunnelOptions { MaxMessageBytes = 200 * 1024 }, NullLogger<LocalTunnels>.Instance);

    public ValueTask DisposeAsync() => _tunnels.DisposeAsync();

    private static TunnelFrame Frame(long sequence, TunnelFrameKind kind, int size, byte fill = 0) =>
        new(sequence, kind, Enumerable.Repeat(fill, size).ToArray());

    [Fact]
    public async Task Frames_out_of_order_and_repeated_make_each_message_once_in_order()
    {
        var end = _tunnels.Create("c");
        var frames = Enumerable.Range(0, 50).Select(i => Frame(i, TunnelFrameKind.Final, 4, (byte)i)).ToArray();
        var shuffled = frames.Concat(frames.Take(10)).OrderBy(_ => Random.Shared.Next()).ToArray();
        foreach (var batch in shuffled.Chunk(7))
        {
            Assert.Equal(TunnelStatus.Open, end.OnData(batch));
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
        var end = _tunnels.Create("c");
        end.OnData([
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
        var end = _tunnels.Create("c");
        end.OnData([Frame(0, TunnelFrameKind.Final, 1), .. Enumerable.Range(1, 4).Select(i => Frame(i, TunnelFrameKind.Chunk, 64 * 1024))]);
        Assert.Single(await end.ReceiveAsync());
        var error = await Assert.ThrowsAsync<TunnelClosedException>(async () => await end.ReceiveAsync());
        Assert.Equal(TunnelCloseReason.MessageTooLarge, error.Reason);
        Assert.Contains("MaxMessageBytes", error.Message);
        Assert.Equal(TunnelStatus.Unknown, end.OnData([Frame(5, TunnelFrameKind.Final, 1)]));
    }
}
