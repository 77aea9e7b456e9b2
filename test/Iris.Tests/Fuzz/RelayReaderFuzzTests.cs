using System.Buffers;
using CsCheck;
using Iris.Relay.Protocol;
using Iris.Tests.Relay;
using Xunit.Abstractions;

namespace Iris.Tests.Fuzz;

/// <summary>Hostile input for <see cref="RelayReader"/>: for any bytes it reads messages, waits for more, or throws
/// <see cref="RelayProtocolException"/>, nothing else; it never allocates for a length the input does not hold; and
/// reading the same bytes in two pieces gives the same messages as reading them whole.</summary>
public class RelayReaderFuzzTests(ITestOutputHelper output)
{
    private const string Target = "RelayReader.TryRead";

    private static readonly RelayLimits Limits = new(MaxMessageBytes: 1024 * 1024, MaxNameBytes: 4096);

    private static readonly Gen<string> Name = Gen.Char['a', 'z'].Array[0, 24].Select(chars => new string(chars));

    private static readonly Gen<byte[]> Payload = Gen.Byte.Array[0, 200];

    /// <summary>One valid client message, encoded by the test client's own writer (not the relay's code).</summary>
    private static readonly Gen<byte[]> Valid =
        Gen.Select(Gen.Int[0, 13], Gen.ULong, Gen.ULong[0, int.MaxValue], Name, Payload, Gen.Bool, (op, id, value, name, data, flag) =>
        {
            var w = new RelayTestClient.FieldWriter();
            switch (op)
            {
                case 0: w.Byte(0x00); w.String("iris-client-magic"); w.String("v1.0-draft2"); w.String(name); break;
                case 1: w.Byte(0x02); break;
                case 2: w.Byte(0x03); w.String(name); w.Binary(data); break;
                case 3: w.Byte(0x04); w.Varint(id); w.String(name); w.Binary(data); w.Varint(value); break;
                case 4: w.Byte(0x05); w.Varint(id); w.Bool(flag); if (flag) { w.Binary(data); } else { w.String(name); } break;
                case 5: w.Byte(0x06); w.String(name); break;
                case 6: w.Byte(0x07); w.String(name); break;
                case 7: w.Byte(0x08); w.String(name); w.Binary(data); break;
                case 8: w.Byte(0x09); w.Varint(id); w.String(name); w.Varint(value); break;
                case 9: w.Byte(0x0a); w.Varint(id); w.Varint(value); break;
                case 10: w.Byte(0x0b); w.Varint(id); w.Varint(value); break;
                case 11: w.Byte(0x0c); w.Varint(id); w.Varint(value); w.Binary(data); break;
                default: w.Byte(0x0d); w.Varint(id); break;
            }

            return w.Buffer.WrittenSpan.ToArray();
        });

    /// <summary>One to four valid messages back to back.</summary>
    private static readonly Gen<byte[]> ValidRun = Valid.Array[1, 4].Select(parts => parts.SelectMany(p => p).ToArray());

    private static readonly Gen<Mutated<byte[]>> Mutated = Mutations.Of(ValidRun, bytes => bytes);

    [Fact]
    public Task Mutated_and_random_input_reads_waits_or_fails_with_a_protocol_error() =>
        Fuzzing.RunAsync(output, Target, Gen.Select(Mutated, Mutations.Random(300), Gen.Int[0, 7], Gen.Int[0, 400]), sample =>
        {
            var (mutated, random, pick, cut) = sample;
            var bytes = pick == 0 ? random : mutated.Bytes;
            var whole = ReadAll(bytes, bytes.Length);
            if (pick != 0 && mutated.Unchanged && (whole.Failure is not null || whole.Rest != 0))
            {
                throw new FuzzFailure($"Valid input was refused: {whole.Failure}");
            }

            // The same bytes in two pieces: what a socket does to them.
            var split = ReadAll(bytes, Math.Min(cut, bytes.Length));
            if (split.Frames != whole.Frames || split.Failure != whole.Failure || split.Rest != whole.Rest)
            {
                throw new FuzzFailure($"Read whole: {whole}; read in two pieces at {cut}: {split}.");
            }
        });

    [Fact]
    public void Lengths_past_the_limits_are_refused_before_anything_is_allocated_or_waited_for()
    {
        foreach (var huge in new ulong[] { (ulong)Limits.MaxMessageBytes + 1, uint.MaxValue, ulong.MaxValue })
        {
            var w = new RelayTestClient.FieldWriter();
            w.Byte(0x03);
            w.String("c");
            w.Varint(huge);
            var before = GC.GetAllocatedBytesForCurrentThread();
            var buffer = new ReadOnlySequence<byte>(w.Buffer.WrittenMemory);
            Assert.Throws<RelayProtocolException>(() => RelayReader.TryRead(ref buffer, Limits, out _));
            Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 64 * 1024);
        }

        var overlong = new ReadOnlySequence<byte>(new byte[] { 0x0d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02 });
        Assert.Throws<RelayProtocolException>(() => RelayReader.TryRead(ref overlong, Limits, out _));
    }

    /// <summary>Reads every message of <paramref name="bytes"/>, giving the reader the first <paramref name="cut"/>
    /// bytes first, then all of them, as a pipe would; checks that it allocates within the bound.</summary>
    private static Outcome ReadAll(byte[] bytes, int cut)
    {
        var frames = 0;
        string? failure = null;
        var consumed = 0;
        var before = GC.GetAllocatedBytesForCurrentThread();
        try
        {
            foreach (var available in new[] { cut, bytes.Length })
            {
                var piece = bytes.AsMemory(consumed, available - consumed);
                var buffer = Sequences.Segmented(piece, [piece.Length / 3]);
                var start = buffer.Length;
                while (RelayReader.TryRead(ref buffer, Limits, out _))
                {
                    frames++;
                }

                consumed += (int)(start - buffer.Length);
            }
        }
        catch (RelayProtocolException e)
        {
            failure = e.Message;
        }

        Fuzzing.CheckAllocation(Target, GC.GetAllocatedBytesForCurrentThread() - before, bytes.Length);
        return new Outcome(frames, failure, failure is null ? bytes.Length - consumed : -1);
    }

    private sealed record Outcome(int Frames, string? Failure, int Rest);
}
