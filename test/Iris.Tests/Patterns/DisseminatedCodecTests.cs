using Iris.Protocol;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;
using Orleans.Serialization.Cloning;

namespace Iris.Tests.Patterns;

/// <summary>The wire form of broadcast and publication messages (<see cref="DisseminatedCodec"/>), as Orleans' serializer
/// runs it on a hand-over's batch.</summary>
public sealed class DisseminatedCodecTests
{
    private static readonly ServiceProvider Services = new ServiceCollection()
        .AddSerializer(builder => builder.AddAssembly(typeof(Disseminated).Assembly))
        .BuildServiceProvider();

    private static readonly Guid Id = Guid.Parse("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");

    private static Serializer<Disseminated[]> Batches => Services.GetRequiredService<Serializer<Disseminated[]>>();

    [Fact]
    public void A_batch_comes_back_as_it_was_sent_whatever_its_bodies_and_trace_parents()
    {
        var shared = new byte[] { 7, 7, 7 };
        var large = new byte[65536];
        new Random(3).NextBytes(large);
        Disseminated[] batch =
        [
            new(Id, []),
            new(Guid.NewGuid(), [42]) { TraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" },
            new(Guid.NewGuid(), shared),
            new(Guid.NewGuid(), shared) { TraceParent = string.Empty },
            new(Guid.NewGuid(), large) { TraceParent = "ünïcødé" },
        ];

        var back = Batches.Deserialize(Batches.SerializeToArray(batch))!;

        Assert.Equal(batch.Length, back.Length);
        for (var i = 0; i < batch.Length; i++)
        {
            Assert.Equal(batch[i].Id, back[i].Id);
            Assert.Equal(batch[i].Body, back[i].Body);
            Assert.Equal(batch[i].TraceParent, back[i].TraceParent);
        }

        // Each body arrives as an array of its own: a handler that writes into one does not change another's.
        Assert.NotSame(back[2].Body, back[3].Body);
    }

    [Fact]
    public void A_batch_is_copied_for_a_call_within_a_process()
    {
        Disseminated[] batch = [new(Id, [1, 2]) { TraceParent = "t" }];
        var copy = Services.GetRequiredService<DeepCopier<Disseminated[]>>().Copy(batch);
        Assert.NotSame(batch, copy);
        Assert.Equal(batch, copy);
    }

    [Theory]
    [InlineData(-1, "body length, -1")]
    [InlineData(4, "body length, 4, does not fit")]
    [InlineData(int.MaxValue, "body length, 2147483647")]
    public void A_message_whose_body_length_does_not_fit_is_refused_with_a_serializer_error(int bodyLength, string said)
    {
        var bytes = Batches.SerializeToArray([new(Id, [1, 2, 3])]);
        var at = BodyLengthOffset(bytes);
        BitConverter.TryWriteBytes(bytes.AsSpan(at, 4), bodyLength);

        var error = Assert.ThrowsAny<SerializerException>(() => Batches.Deserialize(bytes));
        Assert.Contains(said, error.Message, StringComparison.Ordinal);
        Assert.Contains("malformed", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_message_whose_trace_parent_length_does_not_match_is_refused_with_a_serializer_error()
    {
        var bytes = Batches.SerializeToArray([new(Id, [1, 2, 3])]);
        BitConverter.TryWriteBytes(bytes.AsSpan(BodyLengthOffset(bytes) + 4 + 3, 4), 5);

        var error = Assert.ThrowsAny<SerializerException>(() => Batches.Deserialize(bytes));
        Assert.Contains("trace parent length, 5", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_cut_off_message_is_refused_not_read_past_its_end()
    {
        // Orleans' reader refuses to read past the input's end (IndexOutOfRangeException) before the body is allocated.
        var bytes = Batches.SerializeToArray([new(Id, new byte[100])]);
        var error = Record.Exception(() => Batches.Deserialize(bytes.AsSpan(0, bytes.Length - 50).ToArray()));
        Assert.True(error is SerializerException or IndexOutOfRangeException, $"a cut-off message threw {error?.GetType().Name ?? "nothing"}");
    }

    /// <summary>Where the body length is: right after the id's 16 bytes.</summary>
    private static int BodyLengthOffset(byte[] bytes)
    {
        var id = bytes.AsSpan().IndexOf(Id.ToByteArray());
        Assert.True(id >= 0, "the id is written as its 16 bytes");
        return id + 16;
    }
}
