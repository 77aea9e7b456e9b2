using System.Diagnostics;
using System.IO.Pipelines;
using CsCheck;
using Iris.Overlay.Security;
using Xunit.Abstractions;

namespace Iris.Tests.Fuzz;

/// <summary>
/// Hostile peers for <see cref="Handshake.RunAsync"/>. One side runs against bytes played from an in-memory stream
/// (a real peer's recorded transcript, mutated, or random bytes), which then ends, stalls past the timeout, or
/// cancels the caller's own token: the handshake ends with <see cref="OverlayAuthenticationException"/>, or with
/// <see cref="OperationCanceledException"/> only when the caller's token was cancelled, and within its timeout.
/// Both sides against each other through a relay that flips a bit or cuts the connection: a side completes only if
/// everything it verified arrived intact, and two sides that complete agree on their keys.
/// </summary>
public class HandshakeFuzzTests(ITestOutputHelper output)
{
    private const int Timeout = 2;
    private const int RecordedTranscripts = 8;
    private const int Reply = Handshake.HelloSize + Handshake.MacSize;

    /// <summary>How far past its timeout a handshake may end on a busy 2-core machine before it counts as hung.</summary>
    private static readonly TimeSpan Slack = TimeSpan.FromSeconds(10);

    private static readonly NetworkKey Key = NetworkKey.FromBytes(Enumerable.Range(7, NetworkKey.Size).Select(i => (byte)i).ToArray());

    private enum End
    {
        Closes,
        Stalls,
        CancelsCaller,
    }

    [Fact]
    public async Task Either_side_against_mutated_or_random_bytes_fails_with_an_authentication_error_in_time()
    {
        var transcripts = await RecordAsync();
        var fromInitiator = transcripts.Select(t => t.FromInitiator).ToArray();
        var fromResponder = transcripts.Select(t => t.FromResponder).ToArray();
        var input = Gen.Frequency(
            (6, Mutations.Of(Gen.Int[0, RecordedTranscripts - 1], i => fromInitiator[i]).Select(m => m.Bytes)),
            (1, Mutations.Random(200, [Handshake.Version, 0x04])));
        var responderInput = Gen.Frequency(
            (6, Mutations.Of(Gen.Int[0, RecordedTranscripts - 1], i => fromResponder[i]).Select(m => m.Bytes)),
            (1, Mutations.Random(200, [Handshake.Version, 0x04])));
        var end = Gen.Frequency((28, Gen.Const(End.Closes)), (1, Gen.Const(End.Stalls)), (1, Gen.Const(End.CancelsCaller)));
        var sample = Gen.Select(Gen.Bool, input, responderInput, end, Gen.Int[1, 120], (initiator, i, r, e, chunk) => (Initiator: initiator, Bytes: initiator ? r : i, End: e, Chunk: chunk));
        await Fuzzing.RunAsync(output, "Handshake.RunAsync (replayed, mutated, random)", sample, async c =>
        {
            using var caller = new CancellationTokenSource();
            var stream = new ScriptedStream(c.Bytes, c.Chunk, c.End, caller);
            var started = Stopwatch.GetTimestamp();
            try
            {
                var result = await Handshake.RunAsync(stream, c.Initiator, Key, TimeSpan.FromMilliseconds(Timeout), 1L << 32, caller.Token);
                throw new FuzzFailure($"A handshake as {(c.Initiator ? "initiator" : "responder")} completed against played bytes (id {result.ConnectionId}).");
            }
            catch (OverlayAuthenticationException)
            {
            }
            catch (OperationCanceledException) when (caller.IsCancellationRequested)
            {
            }

            if (Stopwatch.GetElapsedTime(started) > TimeSpan.FromMilliseconds(Timeout) + Slack)
            {
                throw new FuzzFailure($"A handshake took {Stopwatch.GetElapsedTime(started)} with a timeout of {Timeout} ms.");
            }
        });
    }

    /// <summary>20,000 cases, not 100,000: each runs two real handshakes (two key pairs, two agreements) over pipes,
    /// about 0.7 ms a case on 2 cores, and 100,000 would take over a minute. The played-bytes test above covers each
    /// side's parsing for the full count; <c>IRIS_FUZZ_SECONDS</c> runs this one for longer.</summary>
    [Fact]
    public Task Two_sides_through_a_tampering_relay_complete_only_on_what_arrived_intact() =>
        Fuzzing.RunAsync(
            output,
            "Handshake.RunAsync (both sides, tampering relay)",
            Gen.Select(Gen.Int[0, 2], Gen.Bool, Gen.Int[0, Reply - 1], Gen.Int[0, 7], (tamper, towardResponder, offset, bit) => new Tamper(tamper, towardResponder, offset, bit)),
            async tamper =>
            {
                var toResponder = new Pipe();
                var toInitiator = new Pipe();
                await using var initiatorEnd = new PipeEnd(toInitiator.Reader, toResponder.Writer, tamper.TowardResponder ? tamper : null);
                await using var responderEnd = new PipeEnd(toResponder.Reader, toInitiator.Writer, tamper.TowardResponder ? null : tamper);
                var initiator = RunSideAsync(initiatorEnd, initiator: true);
                var responder = RunSideAsync(responderEnd, initiator: false);
                var (sent, received) = (await initiator, await responder);

                // The initiator verifies the whole reply and writes its MAC last; the responder verifies everything.
                var initiatorShouldComplete = tamper.Kind == 0 || (tamper.TowardResponder && tamper.Offset >= Handshake.HelloSize);
                var responderShouldComplete = tamper.Kind == 0;
                if ((sent is not null) != initiatorShouldComplete || (received is not null) != responderShouldComplete)
                {
                    throw new FuzzFailure($"With {tamper} the initiator {(sent is null ? "failed" : "completed")} and the responder {(received is null ? "failed" : "completed")}.");
                }

                if (sent is { } i && received is { } r)
                {
                    byte[] header = [0, 0, 0, 9];
                    var sealedFrame = new byte[9 + FrameProtector.TagSize];
                    i.Send.Seal(header, "handshake"u8, sealedFrame);
                    var opened = new byte[9];
                    r.Receive.Open(header, sealedFrame, opened);
                    if (i.ConnectionId != r.ConnectionId || !opened.AsSpan().SequenceEqual("handshake"u8))
                    {
                        throw new FuzzFailure("Two sides completed the handshake with different keys or identifiers.");
                    }
                }
            },
            cases: 20_000);

    /// <summary>Runs one side; null when it failed as it should, with an authentication error. Closes its sending
    /// half when done, as a connection that fails is closed.</summary>
    private static async Task<HandshakeResult?> RunSideAsync(PipeEnd end, bool initiator)
    {
        try
        {
            return await Handshake.RunAsync(end, initiator, Key, TimeSpan.FromSeconds(5), 1L << 32, CancellationToken.None);
        }
        catch (OverlayAuthenticationException)
        {
            return null;
        }
        finally
        {
            await end.CloseAsync();
        }
    }

    /// <summary>What a real initiator and responder write to each other.</summary>
    private static async Task<(byte[] FromInitiator, byte[] FromResponder)[]> RecordAsync()
    {
        var transcripts = new (byte[], byte[])[RecordedTranscripts];
        for (var i = 0; i < transcripts.Length; i++)
        {
            var toResponder = new Pipe();
            var toInitiator = new Pipe();
            await using var initiatorEnd = new PipeEnd(toInitiator.Reader, toResponder.Writer, null);
            await using var responderEnd = new PipeEnd(toResponder.Reader, toInitiator.Writer, null);
            var initiator = RunSideAsync(initiatorEnd, initiator: true);
            var responder = RunSideAsync(responderEnd, initiator: false);
            Assert.NotNull(await initiator);
            Assert.NotNull(await responder);
            transcripts[i] = (initiatorEnd.Written.ToArray(), responderEnd.Written.ToArray());
        }

        return transcripts;
    }

    /// <summary>No change (kind 0), a bit flipped (1) or the connection cut (2) at <see cref="Offset"/> of one
    /// direction.</summary>
    private sealed record Tamper(int Kind, bool TowardResponder, int Offset, int Bit);

    /// <summary>Plays <c>input</c> in reads of at most <c>chunk</c> bytes, then ends as told; takes writes and drops
    /// them. Everything completes synchronously except a stall, which waits for cancellation.</summary>
    private sealed class ScriptedStream(byte[] input, int chunk, End end, CancellationTokenSource caller) : Stream
    {
        private int _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_position < input.Length)
            {
                var count = Math.Min(Math.Min(buffer.Length, chunk), input.Length - _position);
                input.AsSpan(_position, count).CopyTo(buffer.Span);
                _position += count;
                return ValueTask.FromResult(count);
            }

            switch (end)
            {
                case End.Closes:
                    return ValueTask.FromResult(0);
                case End.CancelsCaller:
                    caller.Cancel();
                    break;
            }

            return new ValueTask<int>(StallAsync(cancellationToken));
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        private static async Task<int> StallAsync(CancellationToken cancellationToken)
        {
            await Task.Delay(System.Threading.Timeout.Infinite, cancellationToken);
            return 0;
        }
    }

    /// <summary>One end of an in-memory connection: reads one pipe, writes the other, recording what it wrote and
    /// applying <c>tamper</c> to it on the way.</summary>
    private sealed class PipeEnd(PipeReader reader, PipeWriter writer, Tamper? tamper) : Stream
    {
        private readonly Stream _input = reader.AsStream();
        private int _offset;
        private bool _cut;

        public List<byte> Written { get; } = [];

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            _input.ReadAsync(buffer, cancellationToken);

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Written.AddRange(buffer.Span);
            var bytes = buffer.ToArray();
            var start = _offset;
            _offset += bytes.Length;
            if (_cut)
            {
                return;
            }

            if (tamper is { } t && t.Offset >= start && t.Offset < _offset)
            {
                switch (t.Kind)
                {
                    case 1:
                        bytes[t.Offset - start] ^= (byte)(1 << t.Bit);
                        break;
                    case 2:
                        bytes = bytes[..(t.Offset - start)];
                        _cut = true;
                        break;
                }
            }

            await writer.WriteAsync(bytes, cancellationToken);
            if (_cut)
            {
                await writer.CompleteAsync();
            }
        }

        public async ValueTask CloseAsync() => await writer.CompleteAsync();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
