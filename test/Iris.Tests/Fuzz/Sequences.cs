using System.Buffers;

namespace Iris.Tests.Fuzz;

/// <summary>Bytes as a reader gets them from a pipe: a sequence of several segments, so that fields cross segment
/// boundaries.</summary>
internal static class Sequences
{
    /// <summary><paramref name="bytes"/> as a sequence of segments split at <paramref name="cuts"/> (each taken modulo
    /// the length plus one).</summary>
    public static ReadOnlySequence<byte> Segmented(ReadOnlyMemory<byte> bytes, int[] cuts)
    {
        var points = cuts.Select(cut => cut % (bytes.Length + 1)).Append(0).Append(bytes.Length).Distinct().Order().ToArray();
        if (points.Length <= 2)
        {
            return new ReadOnlySequence<byte>(bytes);
        }

        var first = new Segment(bytes[points[0]..points[1]], 0);
        var last = first;
        for (var i = 1; i < points.Length - 1; i++)
        {
            last = last.Append(bytes[points[i]..points[i + 1]]);
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
