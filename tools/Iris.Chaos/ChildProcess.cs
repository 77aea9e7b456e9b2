using System.Diagnostics;

namespace Iris.Chaos;

/// <summary>A process the runner started: its output goes to a log file, and the last lines are kept to wait for a
/// line that says it is ready. Registered with <see cref="ChildProcesses"/> so that it never outlives the runner.</summary>
internal sealed class ChildProcess
{
    private const int KeptLines = 4000;
    private readonly Process _process;
    private readonly StreamWriter _log;
    private readonly Queue<string> _lines = new();
    private long _lineCount;

    private ChildProcess(string name, Process process, StreamWriter log)
    {
        Name = name;
        _process = process;
        _log = log;
    }

    public string Name { get; }

    public int Id => _process.Id;

    public bool HasExited
    {
        get
        {
            try
            {
                return _process.HasExited;
            }
            catch (InvalidOperationException)
            {
                return true;
            }
        }
    }

    public static ChildProcess Start(string name, string fileName, IEnumerable<string> arguments, IDictionary<string, string> environment, string logPath)
    {
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var log = new StreamWriter(logPath, append: false) { AutoFlush = true };
        var child = new ChildProcess(name, Process.Start(start) ?? throw new InvalidOperationException($"{fileName} did not start"), log);
        ChildProcesses.Add(child);
        child._process.OutputDataReceived += (_, e) => child.Add(e.Data);
        child._process.ErrorDataReceived += (_, e) => child.Add(e.Data);
        child._process.BeginOutputReadLine();
        child._process.BeginErrorReadLine();
        return child;
    }

    /// <summary>Polls the output until a line satisfies <paramref name="ready"/> and returns it; throws with the last
    /// lines if the process exits or <paramref name="limit"/> passes first.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> ready, TimeSpan limit, string what, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(limit.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            lock (_lines)
            {
                if (_lines.FirstOrDefault(ready) is { } line)
                {
                    return line;
                }
            }

            if (HasExited || Stopwatch.GetTimestamp() > deadline)
            {
                string tail;
                lock (_lines)
                {
                    tail = string.Join(Environment.NewLine, _lines.TakeLast(20));
                }

                throw new InvalidOperationException($"{Name}: {what} not seen within {limit} (exited: {HasExited}). Last lines:{Environment.NewLine}{tail}");
            }

            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Writes a line to the process's standard input (the runner's commands to its own programs).</summary>
    public async Task SendLineAsync(string line)
    {
        await _process.StandardInput.WriteLineAsync(line).ConfigureAwait(false);
        await _process.StandardInput.FlushAsync().ConfigureAwait(false);
    }

    /// <summary>Working set in bytes, or null once the process is gone.</summary>
    public long? WorkingSet()
    {
        try
        {
            _process.Refresh();
            return _process.HasExited ? null : _process.WorkingSet64;
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>CPU time the process has used so far, or null once it is gone.</summary>
    public TimeSpan? CpuTime()
    {
        try
        {
            _process.Refresh();
            return _process.HasExited ? null : _process.TotalProcessorTime;
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>SIGKILL to the process and everything it started, as a crash would.</summary>
    public void Kill()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(5000);
        }
        catch (Exception e) when (e is InvalidOperationException or AggregateException or System.ComponentModel.Win32Exception)
        {
            // Already gone.
        }
    }

    private void Add(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_lines)
        {
            _lines.Enqueue(line);
            if (++_lineCount > KeptLines)
            {
                _lines.Dequeue();
            }

            try
            {
                _log.WriteLine(line);
            }
            catch (ObjectDisposedException)
            {
                // Output after the runner closed the logs.
            }
        }
    }
}
