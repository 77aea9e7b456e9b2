using System.Diagnostics;

namespace Iris.Benchmarks.Paper;

/// <summary>
/// A process of the paper harness (a silo of either system): started with its output read line by line, ready once
/// a given line appears, its CPU time read for the cost per message, killed on disposal.
/// </summary>
internal sealed class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    /// <summary>A directory where each child's output is also written (see <see cref="StartAsync"/>).</summary>
    public const string LogsVariable = "IRIS_BENCH_LOGS";

    private readonly List<string> _lines = [];

    private ChildProcess(Process process) => _process = process;

    /// <summary>The process id.</summary>
    public int Id => _process.Id;

    /// <summary>The CPU time the process used so far.</summary>
    public TimeSpan CpuTime
    {
        get
        {
            _process.Refresh();
            return _process.TotalProcessorTime;
        }
    }

    /// <summary>Peak working set so far, in MiB.</summary>
    public double PeakMemoryMb
    {
        get
        {
            _process.Refresh();
            return _process.PeakWorkingSet64 / (1024.0 * 1024);
        }
    }

    /// <summary>Starts <c>dotnet <paramref name="dll"/></c> with <paramref name="arguments"/> and
    /// <paramref name="environment"/>, and waits until a line of its output contains <paramref name="ready"/>.</summary>
    public static async Task<ChildProcess> StartAsync(string dll, IEnumerable<string> arguments, IReadOnlyDictionary<string, string> environment, string ready, TimeSpan limit)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        start.ArgumentList.Add(dll);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        // IRIS_BENCH_LOGS=<directory>: every child's output also goes to a file there, with Iris' debug lines, for
        // finding out what went wrong in a run.
        var logs = Environment.GetEnvironmentVariable(LogsVariable);
        if (!string.IsNullOrEmpty(logs))
        {
            start.Environment["Logging__LogLevel__Iris"] = "Debug";
        }

        var child = new ChildProcess(Process.Start(start)!);
        var log = string.IsNullOrEmpty(logs) ? null : TextWriter.Synchronized(File.AppendText(Path.Combine(Directory.CreateDirectory(logs).FullName, $"{Path.GetFileNameWithoutExtension(dll)}-{child._process.Id}.log")));
        var seen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void Read(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (child._lines)
            {
                child._lines.Add(line);
            }

            if (log is not null)
            {
                log.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {line}");
                log.Flush();
            }

            if (line.Contains(ready, StringComparison.Ordinal))
            {
                seen.TrySetResult();
            }
        }

        child._process.OutputDataReceived += (_, e) => Read(e.Data);
        child._process.ErrorDataReceived += (_, e) => Read(e.Data);
        child._process.BeginOutputReadLine();
        child._process.BeginErrorReadLine();
        try
        {
            await seen.Task.WaitAsync(limit);
        }
        catch (TimeoutException)
        {
            await child.DisposeAsync();
            throw new InvalidOperationException($"{Path.GetFileName(dll)} {string.Join(' ', arguments)} did not print '{ready}' within {limit}; its output:\n{child.Output}");
        }

        return child;
    }

    /// <summary>Writes <paramref name="command"/> to the process's input and returns the first line after it that
    /// starts with <paramref name="prefix"/>.</summary>
    public async Task<string> AskAsync(string command, string prefix, TimeSpan limit)
    {
        int before;
        lock (_lines)
        {
            before = _lines.Count;
        }

        await _process.StandardInput.WriteLineAsync(command);
        await _process.StandardInput.FlushAsync();
        var deadline = DateTime.UtcNow + limit;
        while (true)
        {
            lock (_lines)
            {
                for (var i = before; i < _lines.Count; i++)
                {
                    if (_lines[i].StartsWith(prefix, StringComparison.Ordinal))
                    {
                        return _lines[i];
                    }
                }
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"no '{prefix}' line after '{command}' within {limit}; output:\n{Output}");
            }

            if (_process.HasExited)
            {
                throw new InvalidOperationException($"the process exited (code {_process.ExitCode}) before a '{prefix}' line after '{command}'; output:\n{Output}");
            }

            await Task.Delay(10);
        }
    }

    /// <summary>The last lines of output that are not answers to the harness's commands (log lines).</summary>
    public string Log
    {
        get
        {
            string[] answers = ["COUNTS ", "RESET", "LATENCY ", "SILOS ", "READY"];
            lock (_lines)
            {
                return string.Join(Environment.NewLine, _lines.Where(l => !answers.Any(a => l.StartsWith(a, StringComparison.Ordinal))).TakeLast(60));
            }
        }
    }

    /// <summary>Every line of output so far that starts with <paramref name="prefix"/>.</summary>
    public List<string> Lines(string prefix)
    {
        lock (_lines)
        {
            return _lines.Where(l => l.StartsWith(prefix, StringComparison.Ordinal)).ToList();
        }
    }

    public string Output
    {
        get
        {
            lock (_lines)
            {
                return string.Join(Environment.NewLine, _lines.TakeLast(40));
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        await _process.WaitForExitAsync();
        _process.Dispose();
    }
}
