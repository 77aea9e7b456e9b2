using System.Text;
using System.Text.Unicode;

namespace Iris.Cli.CommandLine;

/// <summary>
/// Writes received messages to standard output: a message that is valid UTF-8 as a line of text (a newline added unless
/// it ends with one), any other message as its raw bytes. Whole messages only, one writer at a time, flushed each time,
/// so that a pipe reader sees each message as it arrives.
/// </summary>
internal sealed class MessageWriter : IDisposable
{
    private static readonly byte[] NewLine = "\n"u8.ToArray();

    private readonly Stream _output;
    private readonly Lock _gate = new();

    public MessageWriter(Stream output) => _output = output;

    public static MessageWriter ForStandardOutput() => new(Console.OpenStandardOutput());

    /// <summary>Writes one message, after <paramref name="prefix"/> when given (a timestamp, say).</summary>
    public void Write(ReadOnlySpan<byte> message, string? prefix = null)
    {
        lock (_gate)
        {
            if (prefix is not null)
            {
                _output.Write(Encoding.UTF8.GetBytes(prefix));
            }

            _output.Write(message);
            if (Utf8.IsValid(message) && (message.IsEmpty || message[^1] != (byte)'\n'))
            {
                _output.Write(NewLine);
            }

            _output.Flush();
        }
    }

    public void Dispose() => _output.Dispose();
}
