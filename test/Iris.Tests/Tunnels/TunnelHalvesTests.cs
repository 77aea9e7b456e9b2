using Iris.Protocol;
using Iris.Tunnels;

namespace Iris.Tests.Tunnels;

/// <summary>The sending and the receiving half of a tunnel end, each alone: no Orleans, no peer.</summary>
public sealed class TunnelHalvesTests
{
    private const string Peer = "peer-process";

    private static TunnelFrame Final(long sequence, int size) => new(sequence, TunnelFrameKind.Final, new byte[size]);

    [Fact]
    public void The_receiver_grants_the_running_total_once_a_quarter_window_was_taken()
    {
        var receiver = new TunnelReceiver("c", windowBytes: 4096, maxMessageBytes: 10_000);
        receiver.TakeFrom(Peer);
        Assert.True(receiver.Accept(Peer, [Final(2, 600), Final(0, 600), Final(1, 600)]).Taken);
        Assert.Equal(1800, receiver.BufferedBytes);

        // Each message costs its bytes and the frame's overhead.
        Assert.Equal(0, receiver.Take().Grant);
        Assert.Equal(2 * TunnelFrame.Cost(600), receiver.Take().Grant);
        var (message, grant, _) = receiver.Take();
        Assert.Equal(600, message!.Length);
        Assert.Equal(0, grant);
        Assert.Equal(0, receiver.BufferedBytes);
        Assert.Null(receiver.Take().Message);
    }

    [Fact]
    public void The_receiver_takes_frames_of_one_process_and_starts_afresh_for_another()
    {
        var receiver = new TunnelReceiver("c", 4096, 10_000);
        receiver.TakeFrom(Peer);
        Assert.False(receiver.Accept("stranger", [Final(0, 1)]).Taken);
        Assert.True(receiver.Accept(Peer, [Final(0, 1)]).Taken);

        receiver.TakeFrom("other");
        Assert.Equal(0, receiver.BufferedBytes);
        Assert.Null(receiver.Take().Message);
        Assert.True(receiver.Accept("other", [Final(0, 2)]).Taken);
        Assert.Equal(2, receiver.Take().Message!.Length);
    }

    [Fact]
    public async Task An_ended_receiver_hands_out_what_arrived_then_says_why_it_ended()
    {
        var receiver = new TunnelReceiver("c", 4096, 10_000);
        receiver.TakeFrom(Peer);
        var arrival = receiver.Take().Arrival;
        Assert.False(arrival.IsCompleted);
        receiver.Accept(Peer, [Final(0, 3), new TunnelFrame(1, TunnelFrameKind.Chunk, new byte[5])]);
        await arrival;

        receiver.End(TunnelCloseReason.PeerDied, "gone");
        Assert.Equal(3, receiver.BufferedBytes);
        Assert.Equal(3, receiver.Take().Message!.Length);
        var closed = Assert.Throws<TunnelClosedException>(() => receiver.Take());
        Assert.Equal(TunnelCloseReason.PeerDied, closed.Reason);
        Assert.False(receiver.Accept(Peer, [Final(2, 1)]).Taken);
    }

    [Fact]
    public void The_receiver_refuses_a_message_over_its_limit_chunk_by_chunk()
    {
        var receiver = new TunnelReceiver("c", 4096, maxMessageBytes: 100);
        receiver.TakeFrom(Peer);
        var accepted = receiver.Accept(Peer, [new TunnelFrame(0, TunnelFrameKind.Chunk, new byte[60]), new TunnelFrame(1, TunnelFrameKind.Chunk, new byte[60])]);
        Assert.NotNull(accepted.TooLarge);
    }

    [Fact]
    public async Task The_sender_numbers_chunks_and_waits_for_room_in_the_window()
    {
        var sender = new TunnelSender("c", maxMessageBytes: 1 << 20);
        sender.Open(TunnelFrame.Cost(TunnelOptions.ChunkBytes) + 10);
        var send = sender.SendAsync(new byte[(2 * TunnelOptions.ChunkBytes) + 5], CancellationToken.None).AsTask();

        // The first chunk fits; the second waits for the receiver's grant.
        Assert.True(sender.Frames.TryRead(out var first));
        Assert.Equal((0L, TunnelFrameKind.Chunk, TunnelOptions.ChunkBytes), (first.Sequence, first.Kind, first.Data.Length));
        Assert.False(send.IsCompleted);
        Assert.False(sender.Frames.TryRead(out _));

        sender.OnCredit(TunnelFrame.Cost(TunnelOptions.ChunkBytes));
        sender.OnCredit(10); // an older running total grants nothing
        sender.OnCredit(2 * TunnelFrame.Cost(TunnelOptions.ChunkBytes));
        await send.WaitAsync(TimeSpan.FromSeconds(5));
        var rest = new List<TunnelFrame>();
        while (sender.Frames.TryRead(out var frame))
        {
            rest.Add(frame);
        }

        Assert.Equal([(1L, TunnelFrameKind.Chunk, TunnelOptions.ChunkBytes), (2L, TunnelFrameKind.Final, 5)], rest.Select(f => (f.Sequence, f.Kind, f.Data.Length)));
    }

    [Fact]
    public void Small_messages_count_their_frames_against_the_window_not_only_their_bytes()
    {
        // A window of 4 MiB took 262,144 messages of 16 bytes before: what they cost the receiver to hold, far more
        // than the window says, and as deep a queue for a saturated tunnel's latency.
        var window = new TunnelOptions().WindowBytes;
        var sender = new TunnelSender("c", maxMessageBytes: 1 << 20);
        sender.Open(window);
        var sent = 0;
        while (sender.SendAsync(new byte[16], CancellationToken.None) is { IsCompleted: true })
        {
            sent++;
        }

        Assert.Equal(window / TunnelFrame.Cost(16), sent);
        Assert.True(sent <= window / (16 + 64), $"{sent} messages of 16 bytes fit a window of {window} bytes");
    }

    [Fact]
    public async Task Closing_the_sender_ends_a_send_still_waiting_for_room_and_the_close_comes_last()
    {
        var sender = new TunnelSender("c", maxMessageBytes: 1 << 20);
        sender.Open(TunnelFrame.Cost(10));
        await sender.SendAsync(new byte[10], CancellationToken.None);
        var waiting = sender.SendAsync(new byte[TunnelOptions.ChunkBytes + 1], CancellationToken.None).AsTask();
        Assert.False(waiting.IsCompleted);

        Assert.True(await sender.CloseAsync(CancellationToken.None));
        Assert.Equal(TunnelCloseReason.Closed, (await Assert.ThrowsAsync<TunnelClosedException>(() => waiting)).Reason);
        var frames = new List<TunnelFrame>();
        await foreach (var frame in sender.Frames.ReadAllAsync())
        {
            frames.Add(frame);
        }

        Assert.Equal([TunnelFrameKind.Final, TunnelFrameKind.Close], frames.Select(f => f.Kind));
        await Assert.ThrowsAsync<TunnelClosedException>(() => sender.SendAsync(new byte[1], CancellationToken.None).AsTask());
        await Assert.ThrowsAsync<TunnelMessageTooLargeException>(() => new TunnelSender("c", 4).SendAsync(new byte[5], CancellationToken.None).AsTask());
    }
}
