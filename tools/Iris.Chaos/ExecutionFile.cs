using System.Text;

namespace Iris.Chaos;

/// <summary>A member process's record of what it executed: one line per request (<c>R id</c>), broadcast (<c>B id</c>)
/// or request of an overloaded cluster (<c>O id</c>), written before the handler returns and, unless said otherwise,
/// flushed to disk, so the line exists whenever the caller could have seen the effect, even if the process is killed
/// right after.</summary>
internal sealed class ExecutionFile(string path) : IDisposable
{
    public const char Request = 'R';
    public const char Broadcast = 'B';
    public const char Overloaded = 'O';

    private readonly FileStream _file = new(path, FileMode.Create, FileAccess.Write, FileShare.Read, bufferSize: 4096);
    private readonly Lock _gate = new();

    public void Append(char kind, ReadOnlySpan<byte> id, bool durable = true)
    {
        var line = Encoding.ASCII.GetBytes($"{kind} {Ids.Format(id)}\n");
        lock (_gate)
        {
            _file.Write(line);
            _file.Flush(flushToDisk: durable);
        }
    }

    public void Dispose() => _file.Dispose();

    /// <summary>Reads the (kind, id) entries of a file; a torn last line (a kill mid-write) is skipped.</summary>
    public static IEnumerable<(char Kind, string Id)> Read(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream, Encoding.ASCII);
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 2 + Ids.Length && line[1] == ' ')
            {
                yield return (line[0], line[2..]);
            }
        }
    }
}
