using System.Buffers;
using System.Buffers.Binary;
using CsCheck;
using Iris.Overlay;
using Iris.Overlay.Security;
using Iris.Overlay.Transport;
using Xunit.Abstractions;

namespace Iris.Tests.Fuzz;

/// <summary>
/// Hostile input for <see cref="LinkFrames.TryRead"/>: a run of valid sealed frames, mutated, arriving in random
/// chunks over a sequence of random segments. Frames before the first changed byte come out intact and in order;
/// the first frame touched by a change is refused with <see cref="OverlayProtocolException"/> or
/// <see cref="OverlayAuthenticationException"/> (or waited for, while incomplete); nothing else is thrown, and no
/// buffer is rented for a length the input does not hold.
/// </summary>
public class LinkFramesFuzzTests(ITestOutputHelper output)
{
    private const string Target = "LinkFrames.TryRead";
    private const int SmallFrameLimit = 1024;
    private const int Header = LinkFrames.HeaderSize;

    /// <summary>What the production default allows: 16 MiB of message, a kind byte and the tag.</summary>
    private static readonly int ProductionMaxSealed = new TcpTransportOptions().MaxFrameSize + 1 + FrameProtector.TagSize;

    private static readonly Gen<Frames> ValidFrames = Gen.Select(
        Gen.Byte.Array[32],
        Gen.OneOfConst(1L << 32, 1L, 2L),
        Gen.Bool,
        Gen.Select(Gen.Frequency((4, Gen.Int[0, 3]), (1, Gen.Int[0, 255])), Gen.Byte.Array[0, 300], (kind, body) => new Frame((byte)kind, body)).Array[0, 6],
        (key, rekey, small, frames) => new Frames(key, rekey, small ? SmallFrameLimit + 1 + FrameProtector.TagSize : ProductionMaxSealed, frames));

    private static readonly Gen<int[]> Cuts = Gen.Int[0, 4000].Array[0, 8];

    [Fact]
    public Task Mutated_frames_come_out_intact_up_to_the_first_change_which_is_refused() =>
        Fuzzing.RunAsync(output, Target, Gen.Select(Mutations.Of(ValidFrames, f => f.Seal(), (f, _) => f.HeaderOffsets()), Cuts, Cuts), sample =>
        {
            var (mutated, segments, arrivals) = sample;
            Check(mutated.Value, mutated.Original, mutated.Bytes, segments, arrivals);
        });

    [Fact]
    public void Lengths_beyond_the_limit_are_refused_and_lengths_not_yet_arrived_are_waited_for_without_renting()
    {
        var frames = new Frames(new byte[32], 1L << 32, ProductionMaxSealed, [new Frame(1, [1, 2, 3])]);
        foreach (var length in new uint[] { 0xFFFFFFFF, 0x80000000, 0x7FFFFFFF, (uint)ProductionMaxSealed + 1, 0, 16 })
        {
            var bytes = frames.Seal();
            BinaryPrimitives.WriteUInt32BigEndian(bytes, length);
            using var receive = frames.Receiver();
            var buffer = new ReadOnlySequence<byte>(bytes);
            var before = GC.GetAllocatedBytesForCurrentThread();
            Assert.Throws<OverlayProtocolException>(() => LinkFrames.TryRead(ref buffer, receive, frames.MaxSealed, out _, out _, out _));
            Fuzzing.CheckAllocation(Target, GC.GetAllocatedBytesForCurrentThread() - before, bytes.Length);
        }

        var waiting = frames.Seal();
        BinaryPrimitives.WriteInt32BigEndian(waiting, ProductionMaxSealed);
        using (var receive = frames.Receiver())
        {
            var buffer = new ReadOnlySequence<byte>(waiting);
            var before = GC.GetAllocatedBytesForCurrentThread();
            Assert.False(LinkFrames.TryRead(ref buffer, receive, frames.MaxSealed, out _, out _, out _));
            Fuzzing.CheckAllocation(Target, GC.GetAllocatedBytesForCurrentThread() - before, waiting.Length);
            Assert.Equal(waiting.Length, buffer.Length);
        }
    }

    private static void Check(Frames frames, byte[] original, byte[] bytes, int[] segmentCuts, int[] arrivalCuts)
    {
        var firstDifference = original.AsSpan().CommonPrefixLength(bytes);
        var ends = frames.Ends();
        var intact = ends.Count(end => end <= firstDifference);
        var sequence = Sequences.Segmented(bytes, segmentCuts);
        var arrivals = arrivalCuts.Select(cut => cut % (bytes.Length + 1)).Append(bytes.Length).Distinct().Order().ToArray();
        using var receive = frames.Receiver();
        long consumed = 0;
        var next = 0;
        foreach (var arrived in arrivals)
        {
            var buffer = sequence.Slice(consumed, arrived - consumed);
            while (true)
            {
                var length = buffer.Length;
                bool read;
                byte kind;
                ReadOnlyMemory<byte> body;
                byte[] owner;
                var before = GC.GetAllocatedBytesForCurrentThread();
                try
                {
                    read = LinkFrames.TryRead(ref buffer, receive, frames.MaxSealed, out kind, out body, out owner);
                }
                catch (Exception e) when (e is OverlayProtocolException or OverlayAuthenticationException)
                {
                    Fuzzing.CheckAllocation(Target, GC.GetAllocatedBytesForCurrentThread() - before, bytes.Length);
                    if (next < intact)
                    {
                        throw new FuzzFailure($"Frame {next} was intact but refused: {e.Message}");
                    }

                    return;
                }

                Fuzzing.CheckAllocation(Target, GC.GetAllocatedBytesForCurrentThread() - before, bytes.Length);
                if (!read)
                {
                    if (buffer.Length != length)
                    {
                        throw new FuzzFailure("An incomplete frame consumed part of the buffer.");
                    }

                    break;
                }

                try
                {
                    if (next >= intact)
                    {
                        throw new FuzzFailure($"Frame {next}, changed or never sent, was accepted.");
                    }

                    var expected = frames.List[next];
                    if (kind != expected.Kind || !body.Span.SequenceEqual(expected.Body) || consumed + length - buffer.Length != ends[next])
                    {
                        throw new FuzzFailure($"Frame {next} came out altered.");
                    }
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(owner);
                }

                consumed += length - buffer.Length;
                next++;
            }
        }

        if (next != intact)
        {
            throw new FuzzFailure($"Only {next} of the {intact} intact frames came out.");
        }
    }

    internal sealed record Frame(byte Kind, byte[] Body);

    /// <summary>Frames sealed under one key, as a link's writer seals them.</summary>
    internal sealed record Frames(byte[] Key, long RekeyAfterFrames, int MaxSealed, Frame[] List)
    {
        public FrameProtector Receiver() => new(Key.ToArray(), RekeyAfterFrames);

        public byte[] Seal()
        {
            using var send = new FrameProtector(Key.ToArray(), RekeyAfterFrames);
            var output = new ArrayBufferWriter<byte>();
            foreach (var frame in List)
            {
                var sealedLength = 1 + frame.Body.Length + send.Overhead;
                var span = output.GetSpan(Header + sealedLength);
                BinaryPrimitives.WriteInt32BigEndian(span, sealedLength);
                send.Seal(span[..Header], [frame.Kind, .. frame.Body], span.Slice(Header, sealedLength));
                output.Advance(Header + sealedLength);
            }

            return output.WrittenSpan.ToArray();
        }

        public int[] Ends()
        {
            var ends = new int[List.Length];
            var end = 0;
            for (var i = 0; i < List.Length; i++)
            {
                end += Header + 1 + List[i].Body.Length + FrameProtector.TagSize;
                ends[i] = end;
            }

            return ends;
        }

        public int[] HeaderOffsets() => [0, .. Ends()[..^Math.Min(1, List.Length)]];

        public override string ToString() =>
            $"{List.Length} frames ({string.Join(", ", List.Select(f => $"kind {f.Kind}, {f.Body.Length} bytes"))}), rekey after {RekeyAfterFrames}, limit {MaxSealed}";
    }
}
