using System.Buffers;
using System.Text;

namespace Iris.Relay.Protocol;

/// <summary>
/// Reads client messages. Every length is checked against <see cref="RelayLimits"/> before anything is allocated, and
/// nothing is copied until the whole message has arrived; a message that breaks the protocol throws
/// <see cref="RelayProtocolException"/> saying how.
/// </summary>
internal static class RelayReader
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// Reads one message from the start of <paramref name="buffer"/>: true with the message and
    /// <paramref name="buffer"/> moved past it, or false when the message is not complete yet (nothing consumed).
    /// </summary>
    public static bool TryRead(ref ReadOnlySequence<byte> buffer, RelayLimits limits, out RelayFrame frame)
    {
        var reader = new SequenceReader<byte>(buffer);
        if (!TryReadFrame(ref reader, limits, out frame))
        {
            return false;
        }

        buffer = buffer.Slice(reader.Position);
        return true;
    }

    private static bool TryReadFrame(ref SequenceReader<byte> reader, RelayLimits limits, out RelayFrame frame)
    {
        frame = default;
        if (!reader.TryRead(out var op))
        {
            return false;
        }

        switch ((RelayOpcode)op)
        {
            case RelayOpcode.Init:
                {
                    if (!TryString(ref reader, limits.MaxNameBytes, "magic", out var magic)
                        || !TryString(ref reader, limits.MaxNameBytes, "version", out var version)
                        || !TryString(ref reader, limits.MaxNameBytes, "cluster", out var cluster))
                    {
                        return false;
                    }

                    frame = new RelayFrame(RelayOpcode.Init) { Name = magic, Text = version, Cluster = cluster };
                    return true;
                }

            case RelayOpcode.Close:
                frame = new RelayFrame(RelayOpcode.Close);
                return true;

            case RelayOpcode.Broadcast:
            case RelayOpcode.Publish:
                {
                    if (!TryString(ref reader, limits.MaxNameBytes, op == (byte)RelayOpcode.Publish ? "topic" : "cluster", out var name)
                        || !TryBinary(ref reader, limits.MaxMessageBytes, "message", out var data))
                    {
                        return false;
                    }

                    frame = new RelayFrame((RelayOpcode)op) { Cluster = name, Data = data };
                    return true;
                }

            case RelayOpcode.Request:
                {
                    if (!TryVarint(ref reader, out var id)
                        || !TryString(ref reader, limits.MaxNameBytes, "cluster", out var cluster)
                        || !TryBinary(ref reader, limits.MaxMessageBytes, "request", out var data)
                        || !TryTimeout(ref reader, out var timeout))
                    {
                        return false;
                    }

                    frame = new RelayFrame(RelayOpcode.Request) { Id = id, Cluster = cluster, Data = data, Value = timeout };
                    return true;
                }

            case RelayOpcode.Reply:
                {
                    if (!TryVarint(ref reader, out var id) || !TryBool(ref reader, out var success))
                    {
                        return false;
                    }

                    if (success)
                    {
                        if (!TryBinary(ref reader, limits.MaxMessageBytes, "reply", out var data))
                        {
                            return false;
                        }

                        frame = new RelayFrame(RelayOpcode.Reply) { Id = id, Flag = true, Data = data };
                        return true;
                    }

                    if (!TryString(ref reader, limits.MaxMessageBytes, "fault", out var fault))
                    {
                        return false;
                    }

                    frame = new RelayFrame(RelayOpcode.Reply) { Id = id, Flag = false, Text = fault };
                    return true;
                }

            case RelayOpcode.Subscribe:
            case RelayOpcode.Unsubscribe:
                {
                    if (!TryString(ref reader, limits.MaxNameBytes, "topic", out var topic))
                    {
                        return false;
                    }

                    frame = new RelayFrame((RelayOpcode)op) { Cluster = topic };
                    return true;
                }

            case RelayOpcode.TunnelInit:
                {
                    if (!TryVarint(ref reader, out var id)
                        || !TryString(ref reader, limits.MaxNameBytes, "cluster", out var cluster)
                        || !TryTimeout(ref reader, out var timeout))
                    {
                        return false;
                    }

                    frame = new RelayFrame(RelayOpcode.TunnelInit) { Id = id, Cluster = cluster, Value = timeout };
                    return true;
                }

            case RelayOpcode.TunnelConfirm:
            case RelayOpcode.TunnelAllowance:
                {
                    if (!TryVarint(ref reader, out var id) || !TryVarint(ref reader, out var value))
                    {
                        return false;
                    }

                    frame = new RelayFrame((RelayOpcode)op) { Id = id, Value = value };
                    return true;
                }

            case RelayOpcode.TunnelTransfer:
                {
                    if (!TryVarint(ref reader, out var id)
                        || !TryVarint(ref reader, out var size)
                        || !TryBinary(ref reader, RelayProtocol.ChunkLimit, "tunnel chunk", out var payload))
                    {
                        return false;
                    }

                    frame = new RelayFrame(RelayOpcode.TunnelTransfer) { Id = id, Value = size, Data = payload };
                    return true;
                }

            case RelayOpcode.TunnelClose:
                {
                    if (!TryVarint(ref reader, out var id))
                    {
                        return false;
                    }

                    frame = new RelayFrame(RelayOpcode.TunnelClose) { Id = id };
                    return true;
                }

            default:
                throw new RelayProtocolException($"unknown opcode 0x{op:x2}");
        }
    }

    /// <summary>A varint: base-128 groups, least significant first, the high bit set on all but the last byte.</summary>
    public static bool TryVarint(ref SequenceReader<byte> reader, out ulong value)
    {
        value = 0;
        for (var i = 0; i < RelayProtocol.MaxVarintBytes; i++)
        {
            if (!reader.TryRead(out var b))
            {
                return false;
            }

            // The tenth group holds the 64th bit only.
            if (i == RelayProtocol.MaxVarintBytes - 1 && b > 1)
            {
                throw new RelayProtocolException("a varint does not fit in 64 bits");
            }

            value |= (ulong)(b & 0x7f) << (7 * i);
            if (b < 0x80)
            {
                return true;
            }
        }

        throw new RelayProtocolException("a varint does not fit in 64 bits");
    }

    private static bool TryTimeout(ref SequenceReader<byte> reader, out ulong timeout)
    {
        if (!TryVarint(ref reader, out timeout))
        {
            return false;
        }

        return timeout <= RelayLimits.MaxTimeoutMs
            ? true
            : throw new RelayProtocolException($"a timeout of {timeout} ms is over the {RelayLimits.MaxTimeoutMs} ms limit");
    }

    private static bool TryBool(ref SequenceReader<byte> reader, out bool value)
    {
        value = false;
        if (!reader.TryRead(out var b))
        {
            return false;
        }

        value = b switch
        {
            0 => false,
            1 => true,
            _ => throw new RelayProtocolException($"a boolean is {b}, neither 0 nor 1"),
        };
        return true;
    }

    private static bool TryLength(ref SequenceReader<byte> reader, int limit, string field, out int length)
    {
        length = 0;
        if (!TryVarint(ref reader, out var declared))
        {
            return false;
        }

        if (declared > (ulong)limit)
        {
            throw new RelayProtocolException($"a {field} of {declared} bytes is over the {limit}-byte limit");
        }

        length = (int)declared;
        return true;
    }

    private static bool TryBinary(ref SequenceReader<byte> reader, int limit, string field, out byte[] data)
    {
        data = [];
        if (!TryLength(ref reader, limit, field, out var length) || reader.Remaining < length)
        {
            return false;
        }

        if (length > 0)
        {
            data = GC.AllocateUninitializedArray<byte>(length);
            reader.TryCopyTo(data);
            reader.Advance(length);
        }

        return true;
    }

    private static bool TryString(ref SequenceReader<byte> reader, int limit, string field, out string text)
    {
        text = string.Empty;
        if (!TryLength(ref reader, limit, field, out var length) || reader.Remaining < length)
        {
            return false;
        }

        if (length == 0)
        {
            return true;
        }

        try
        {
            var bytes = reader.UnreadSequence.Slice(0, length);
            text = bytes.IsSingleSegment ? StrictUtf8.GetString(bytes.FirstSpan) : StrictUtf8.GetString(bytes.ToArray());
        }
        catch (DecoderFallbackException)
        {
            throw new RelayProtocolException($"a {field} is not valid UTF-8");
        }

        reader.Advance(length);
        return true;
    }
}
