using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Iris.Tests.Support;

/// <summary>The last lines in-process silos logged (warnings and worse, and Iris' information), with the time and the
/// silo, kept in memory so that a fixture can show them when something went wrong under a loaded run's timing.</summary>
internal sealed class MemoryLog
{
    private const int Kept = 4000;

    private readonly ConcurrentQueue<string> _lines = new();

    public string[] Lines => [.. _lines];

    /// <summary>A provider for one silo's host: its lines are marked with <paramref name="source"/>.</summary>
    public ILoggerProvider For(string source) => new Provider(this, source);

    public override string ToString() => string.Join(Environment.NewLine, _lines);

    private void Add(string line)
    {
        _lines.Enqueue(line);
        while (_lines.Count > Kept && _lines.TryDequeue(out _))
        {
        }
    }

    private sealed class Provider(MemoryLog log, string source) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Logger(log, source, categoryName);

        public void Dispose()
        {
        }
    }

    private sealed class Logger(MemoryLog log, string source, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) =>
            logLevel >= LogLevel.Warning || (logLevel >= LogLevel.Information && category.StartsWith("Iris", StringComparison.Ordinal));

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                log.Add($"{DateTime.UtcNow:HH:mm:ss.fff} {source} {logLevel} {category}: {formatter(state, exception)}{(exception is null ? string.Empty : " | " + exception.GetType().Name + ": " + exception.Message)}");
            }
        }
    }
}
