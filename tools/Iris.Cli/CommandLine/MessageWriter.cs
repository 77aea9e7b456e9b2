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

    /// <summary>EPIPE, the error number an <see cref="IOException"/> carries on Linux and macOS when the pipe's reader
    /// has gone. Any other error (a full disk, say) fails the command.</summary>
    private const int BrokenPipe = 32;

    private readonly Stream _output;
    private readonly Lock _gate = new();

    public MessageWriter(Stream output) => _output = output;

    /// <summary>
    /// Standard output. On Unix, when it is a pipe, socket or terminal, as a stream on file descriptor 1 itself: .NET's
    /// console stream treats a closed pipe as success, so <c>iris subscribe | head -n 1</c> would go on writing into
    /// nothing for ever once head had its line. This stream fails there instead (<see cref="OutputClosedException"/>),
    /// and the command ends quietly. A file (or anything else that seeks) keeps the console stream: a stream on the
    /// descriptor would write at an offset of its own and overwrite what others wrote to the same file.
    /// </summary>
    public static MessageWriter ForStandardOutput()
    {
        if (OperatingSystem.IsWindows())
        {
            return new MessageWriter(Console.OpenStandardOutput());
        }

        var descriptor = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(1, ownsHandle: false), FileAccess.Write, bufferSize: 0);
        if (!descriptor.CanSeek)
        {
            return new MessageWriter(descriptor);
        }

        descriptor.Dispose();
        return new MessageWriter(Console.OpenStandardOutput());
    }

    /// <summary>Writes one message, after <paramref name="prefix"/> when given (a timestamp, say).</summary>
    /// <exception cref="OutputClosedException">Nobody reads the output any more (the pipe's reader has exited).</exception>
    /// <exception cref="IOException">The output cannot be written for another reason (a full disk).</exception>
    public void Write(ReadOnlySpan<byte> message, string? prefix = null)
    {
        try
        {
            WriteMessage(message, prefix);
        }
        catch (IOException e) when (e.HResult == BrokenPipe && !OperatingSystem.IsWindows())
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
