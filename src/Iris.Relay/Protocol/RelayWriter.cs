using System.Buffers;
using System.Text;

namespace Iris.Relay.Protocol;

/// <summary>Writes relay messages (<see cref="RelayOut"/>) to a buffer writer, in the field order of the protocol.</summary>
internal static class RelayWriter
{
    public static void Write(IBufferWriter<byte> writer, in RelayOut frame)
    {
        WriteByte(writer, (byte)frame.Op);
        switch (frame.Op)
        {
            case RelayOpcode.Init:
                WriteString(writer, RelayProtocol.RelayMagic);
                WriteString(writer, RelayProtocol.Version);
                break;
            case RelayOpcode.Deny:
                WriteString(writer, RelayProtocol.RelayMagic);
                WriteString(writer, frame.Text ?? string.Empty);
                break;
            case RelayOpcode.Close:
                WriteString(writer, frame.Text ?? string.Empty);
                break;
            case RelayOpcode.Broadcast:
                WriteBinary(writer, frame.Data.Span);
                break;
            case RelayOpcode.Request:
                WriteVarint(writer, frame.Id);
                WriteBinary(writer, frame.Data.Span);
                WriteVarint(writer, frame.Value);
                break;
            case RelayOpcode.Reply:
                WriteVarint(writer, frame.Id);
                WriteBool(writer, frame.TimedOut);
                if (!frame.TimedOut)
                {
                    WriteBool(writer, frame.Success);
                    if (frame.Success)
                    {
                        WriteBinary(writer, frame.Data.Span);
                    }
                    else
                    {
                        WriteString(writer, frame.Text ?? string.Empty);
                    }
                }

                break;
            case RelayOpcode.Publish:
                WriteString(writer, frame.Text ?? string.Empty);
                WriteBinary(writer, frame.Data.Span);
                break;
            case RelayOpcode.TunnelInit:
            case RelayOpcode.TunnelAllowance:
                WriteVarint(writer, frame.Id);
                WriteVarint(writer, frame.Value);
                break;
            case RelayOpcode.TunnelConfirm:
                WriteVarint(writer, frame.Id);
                WriteBool(writer, frame.TimedOut);
                if (!frame.TimedOut)
                {
                    WriteVarint(writer, frame.Value);
                }

                break;
            case RelayOpcode.TunnelTransfer:
                WriteVarint(writer, frame.Id);
                WriteVarint(writer, frame.Value);
                WriteBinary(writer, frame.Data.Span);
                break;
            case RelayOpcode.TunnelClose:
                WriteVarint(writer, frame.Id);
                WriteString(writer, frame.Text ?? string.Empty);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(frame), frame.Op, "not a message the relay sends");
        }
    }

    public static void WriteVarint(IBufferWriter<byte> writer, ulong value)
    {
        var span = writer.GetSpan(RelayProtocol.MaxVarintBytes);
        var i = 0;
        while (value >= 0x80)
        {
            span[i++] = (byte)(value | 0x80);
            value >>= 7;
        }

        span[i++] = (byte)value;
        writer.Advance(i);
    }

    private static void WriteByte(IBufferWriter<byte> writer, byte value)
    {
        writer.GetSpan(1)[0] = value;
        writer.Advance(1);
    }

    private static void WriteBool(IBufferWriter<byte> writer, bool value) => WriteByte(writer, value ? (byte)1 : (byte)0);

    private static void WriteBinary(IBufferWriter<byte> writer, ReadOnlySpan<byte> data)
    {
        WriteVarint(writer, (ulong)data.Length);
        writer.Write(data);
    }

    private static void WriteString(IBufferWriter<byte> writer, string text)
    {
        var length = Encoding.UTF8.GetByteCount(text);
        WriteVarint(writer, (ulong)length);
        if (length > 0)
        {
            var span = writer.GetSpan(length);
            Encoding.UTF8.GetBytes(text, span);
            writer.Advance(length);
        }
    }
}
