using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Iris.Simulator;

/// <summary>Writes overlay log lines to standard error, stamped with simulated time. For diagnosing a run.</summary>
internal sealed class ConsoleSimLogger(FakeTimeProvider time, LogLevel minimum) : ILogger
{
    private readonly DateTimeOffset _start = time.GetUtcNow();

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= minimum;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (IsEnabled(logLevel))
        {
            Console.Error.WriteLine($"[{(time.GetUtcNow() - _start).TotalSeconds,9:F3}] {logLevel,-11} {formatter(state, exception)}");
        }
    }
}
