using System.Buffers;
using System.Text;
using Orleans.Serialization;
using Orleans.Serialization.Buffers;
using Orleans.Serialization.Codecs;
using Orleans.Serialization.WireProtocol;

namespace Iris.Protocol;

/// <summary>
/// The wire form of a <see cref="Disseminated"/>, written at every hop of every broadcast and publication: one
/// length-prefixed field holding the id (16 bytes), the body's length (4 bytes) and bytes, and the trace parent's
/// length (4 bytes, -1 for none) and UTF-8 bytes. A generated codec writes the body and the trace parent as fields of
/// their own and tracks each body as a reference, a dictionary entry per message on either side of every hop; a body
/// is never the same array as another's that the receiver must see shared, so none is kept here. A field whose
/// lengths do not add up is refused with a <see cref="SerializerException"/>, and one longer than its input by
/// Orleans' reader (<see cref="IndexOutOfRangeException"/>), before anything is allocated for it. A null body is
/// written as an empty one. This form is not the generated codec's: processes of an Iris version before it cannot
/// exchange broadcasts with those after (a mixed network's hand-overs fail with this error).
/// </summary>
[RegisterSerializer]
internal sealed class DisseminatedCodec : IFieldCodec<Disseminated>
{
    /// <summary>The id and the two lengths.</summary>
    private const int Fixed = 16 + sizeof(int) + sizeof(int);

    public void WriteField<TBufferWriter>(ref Writer<TBufferWriter> writer, uint fieldIdDelta, Type? expectedType, Disseminated value)
        where TBufferWriter : IBufferWriter<byte>
    {
        ReferenceCodec.MarkValueField(writer.Session);
        writer.WriteFieldHeader(fieldIdDelta, expectedType, typeof(Disseminated), WireType.LengthPrefixed);
        var body = value.Body ?? [];
        var trace = value.TraceParent;
        var traceBytes = trace is null ? 0 : Encoding.UTF8.GetByteCount(trace);
        writer.WriteVarUInt32(checked((uint)(Fixed + body.Length + traceBytes)));
        GuidCodec.WriteRaw(ref writer, value.Id);
        writer.WriteInt32(body.Length);
        writer.Write(body);
        if (trace is null)
        {
            writer.WriteInt32(-1);
        }
        else
        {
            writer.WriteInt32(traceBytes);
            StringCodec.WriteRaw(ref writer, trace, traceBytes);
        }
    }

    public Disseminated ReadValue<TInput>(ref Reader<TInput> reader, Field field)
    {
        field.EnsureWireType(WireType.LengthPrefixed);
        ReferenceCodec.MarkValueField(reader.Session);
        var length = reader.ReadVarUInt32();
        if (length < Fixed)
        {
            throw Malformed($"its length, {length} bytes, is below the {Fixed} of an id and two lengths");
        }

        reader.EnsureAvailable(length);
        var id = GuidCodec.ReadRaw(ref reader);
        var bodyLength = reader.ReadInt32();
        if (bodyLength < 0 || (uint)bodyLength > length - Fixed)
        {
            throw Malformed($"its body length, {bodyLength}, does not fit its length, {length}");
        }

        var body = reader.ReadBytes((uint)bodyLength);
        var rest = length - Fixed - (uint)bodyLength;
        var traceLength = reader.ReadInt32();
        if (traceLength == -1 ? rest != 0 : traceLength < 0 || (uint)traceLength != rest)
        {
            throw Malformed($"its trace parent length, {traceLength}, does not match the {rest} bytes left of its length");
        }

        var trace = traceLength < 0 ? null : StringCodec.ReadRaw(ref reader, (uint)traceLength);
        return new Disseminated(id, body) { TraceParent = trace };
    }

    private static SerializerException Malformed(string why) =>
        new($"A broadcast or publication message on the wire is malformed: {why}. The sending process runs an incompatible Iris version, or the bytes were damaged.");
}
