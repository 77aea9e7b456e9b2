using System.Diagnostics;

namespace Iris.Tests.Support;

/// <summary>A program started by a test, with its output collected line by line. Disposing closes its standard
/// input (the test host's signal to stop), then kills it if it lingers.</summary>
internal sealed class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly List<DateTime> _times = [];
    private readonly TaskCompletionSource _outputEnded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _errorEnded = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ChildProcess(Process process) => _process = process;

    public int Id => _process.Id;

    /// <summary>
    /// Whether the process has exited and every line it wrote has been read. The process can be seen exited before its
    /// last lines arrive (they are read on other threads), and a test that checks what a process said on its way out
    /// must not miss them.
    /// </summary>
    public bool HasExited => _process.HasExited && _outputEnded.Task.IsCompleted && _errorEnded.Task.IsCompleted;

    public int ExitCode => _process.ExitCode;

    public string[] Lines
    {
        get { lock (_lines) { return [.. _lines]; } }
    }

    /// <summary>The lines with the time (UTC) each was read.</summary>
    public (DateTime At, string Line)[] TimedLines
    {
        get { lock (_lines) { return [.. _times.Zip(_lines)]; } }
    }

    public string Output => string.Join(Environment.NewLine, Lines);

    public static ChildProcess Start(string fileName, IEnumerable<string> arguments, IDictionary<string, string>? environment = null)
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

        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        var child = new ChildProcess(Process.Start(start)!);
        child._process.OutputDataReceived += (_, e) => child.Add(e.Data, child._outputEnded);
        child._process.ErrorDataReceived += (_, e) => child.Add(e.Data, child._errorEnded);
        child._process.BeginOutputReadLine();
        child._process.BeginErrorReadLine();
        return child;
    }

    /// <summary>Polls the output until <paramref name="condition"/> holds; fails the test with the output if it does
    /// not within <paramref name="limit"/>.</summary>
    public async Task WaitForAsync(Func<string[], bool> condition, TimeSpan limit, string what)
    {
        var deadline = DateTime.UtcNow + limit;
        while (!condition(Lines))
        {
            // Exited is read before the lines are looked at again, so that a last line is not missed.
            var exited = HasExited;
            if ((DateTime.UtcNow > deadline || exited) && !condition(Lines))
            {
                Assert.Fail($"{what}: not seen within {limit} (exited: {exited}).\n{Output}");
            }

            await Task.Delay(100);
        }
    }

    /// <summary>Writes <paramref name="line"/> to the program's standard input.</summary>
    public async Task SendAsync(string line)
    {
        await _process.StandardInput.WriteLineAsync(line);
        await _process.StandardInput.FlushAsync();
    }

    /// <summary>
    /// Sends SIGINT, as Ctrl-C would (Process.Kill sends SIGKILL and skips a graceful stop). A process started from a
    /// test run in a shell's background inherits SIGINT ignored (the shell sets it so for background jobs, and .NET
    /// keeps an inherited ignore) and could never see Ctrl-C: it gets SIGTERM instead, as from a supervisor, which
    /// .NET's host handles the same way.
    /// </summary>
    public void Interrupt()
    {
        var signal = IgnoresInterrupt() ? "-TERM" : "-INT";
        using var kill = Process.Start("kill", [signal, _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    /// <summary>Whether the process ignores SIGINT (bit 2 of SigIgn in /proc/pid/status).</summary>
    private bool IgnoresInterrupt()
    {
        try
        {
            var line = File.ReadAllLines($"/proc/{_process.Id}/status").FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal));
            return line is not null && (Convert.ToUInt64(line["SigIgn:".Length..].Trim(), 16) & (1UL << 1)) != 0;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>What Linux says of the process (state, threads, signals pending, blocked, ignored and caught), for a
    /// test that finds it still running when it should have stopped.</summary>
    private string Status()
    {
        try
        {
            var wanted = new[] { "State:", "Threads:", "SigPnd:", "ShdPnd:", "SigBlk:", "SigIgn:", "SigCgt:" };
            return string.Join(", ", File.ReadAllLines($"/proc/{_process.Id}/status").Where(l => wanted.Any(w => l.StartsWith(w, StringComparison.Ordinal))).Select(l => string.Join(' ', l.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            return "no status: " + e.Message;
        }
    }

    /// <summary>Kills the process outright (SIGKILL), as a crash would.</summary>
    public void Kill() => _process.Kill(entireProcessTree: true);

    /// <summary>Waits for the process to exit; fails with its output when it has not within <paramref name="limit"/>.</summary>
    public async Task WaitForExitAsync(TimeSpan limit)
    {
        using var timeout = new CancellationTokenSource(limit);
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"the process did not exit within {limit} ({Status()}); its output:\n{Output}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.StandardInput.Close();
                await _process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(5)).Token);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or InvalidOperationException)
        {
            _process.Kill(entireProcessTree: true);
        }

        _process.Dispose();
    }

    /// <summary>Keeps one line of output; a null line is the end of its stream.</summary>
    private void Add(string? line, TaskCompletionSource ended)
    {
        if (line is null)
        {
            ended.TrySetResult();
        }
        else
        {
            lock (_lines)
            {
                _lines.Add(line);
                _times.Add(DateTime.UtcNow);
            }
        }
    }
}
