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

    /// <summary>
    /// Standard output. On Unix as a stream on file descriptor 1 itself: .NET's console stream treats a closed pipe as
    /// success, so <c>iris subscribe | head -n 1</c> would go on writing into nothing for ever once head had its line.
    /// This stream fails there instead (<see cref="OutputClosedException"/>), and the command ends quietly.
    /// </summary>
    public static MessageWriter ForStandardOutput() => new(OperatingSystem.IsWindows()
        ? Console.OpenStandardOutput()
        : new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(1, ownsHandle: false), FileAccess.Write, bufferSize: 0));

    /// <summary>Writes one message, after <paramref name="prefix"/> when given (a timestamp, say).</summary>
    /// <exception cref="OutputClosedException">Nobody reads the output any more (the pipe's reader has exited).</exception>
    public void Write(ReadOnlySpan<byte> message, string? prefix = null)
    {
        try
        {
            WriteMessage(message, prefix);
        }
        catch (IOException e)
        {
            throw new OutputClosedException(e);
        }
    }

    private void WriteMessage(ReadOnlySpan<byte> message, string? prefix)
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

/// <summary>Standard output was closed by its reader (a pipeline's next command exited): the command has nobody left to
/// write for, and ends with success, quietly, as Unix tools do.</summary>
internal sealed class OutputClosedException(IOException inner) : IOException("Standard output was closed by its reader.", inner);
