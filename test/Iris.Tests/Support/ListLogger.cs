using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Iris.Tests.Support;

/// <summary>Keeps log lines in memory, so a test can check what was logged and show it when it fails.</summary>
internal sealed class ListLogger : ILogger
{
    public ConcurrentQueue<string> Lines { get; } = new();

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        Lines.Enqueue($"{logLevel}: {formatter(state, exception)}{(exception is null ? string.Empty : " | " + exception.GetType().Name)}");

    public override string ToString() => string.Join(Environment.NewLine, Lines);
}
