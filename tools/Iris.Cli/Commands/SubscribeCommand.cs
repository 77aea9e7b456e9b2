using System.CommandLine;
using System.Globalization;
using System.Threading.Channels;
using Iris.Cli.CommandLine;
using Iris.Cli.Connection;

namespace Iris.Cli.Commands;

/// <summary><c>iris subscribe &lt;topic&gt;</c>: every publication on the topic on standard output, until Ctrl-C or
/// <c>--count</c> messages.</summary>
internal static class SubscribeCommand
{
    public static Command Create(CliContext cli)
    {
        var topic = Arguments.Name("topic", "The topic to subscribe to.");
        var count = Arguments.OptionalInteger("--count", ["-n"], "Stop after this many messages. Default: until Ctrl-C.", 1, int.MaxValue);
        var timestamps = new Option<bool>("--timestamps") { Description = "Start each message with the time it arrived (UTC, ISO 8601)." };
        var command = new Command("subscribe", "Print every message published on a topic until Ctrl-C (or --count messages).")
        {
            topic, count, timestamps,
        };
        command.SetAction((parse, _) => RunAsync(cli, parse, parse.GetValue(topic)!, parse.GetValue(count), parse.GetValue(timestamps)));
        return command;
    }

    private static async Task<int> RunAsync(CliContext cli, ParseResult parse, string topic, int? count, bool timestamps)
    {
        await using var connection = await cli.ConnectAsync(parse);
        using var output = MessageWriter.ForStandardOutput();
        var received = Channel.CreateUnbounded<(DateTimeOffset At, byte[] Message)>(new UnboundedChannelOptions { SingleReader = true });
        var subscription = await connection.Iris.SubscribeAsync(topic, new Subscriber(received.Writer), cli.Interrupted);
        try
        {
            CliContext.Status($"subscribed to topic '{topic}'" + (count is { } n ? $"; stopping after {n} message{(n == 1 ? string.Empty : "s")}" : "; Ctrl-C to stop"));
            var printed = 0;
            try
            {
                await foreach (var (at, message) in received.Reader.ReadAllAsync(cli.Interrupted))
                {
                    output.Write(message, timestamps ? at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z' ", CultureInfo.InvariantCulture) : null);
                    if (++printed == count)
                    {
                        break;
                    }
                }
            }
            catch (OperationCanceledException) when (cli.Interrupted.IsCancellationRequested)
            {
                // Ctrl-C: the way a subscription is meant to end.
            }
        }
        finally
        {
            await subscription.DisposeAsync();
        }

        return ExitCodes.Ok;
    }

    /// <summary>Hands each publication to the printing loop with the time it arrived.</summary>
    private sealed class Subscriber(ChannelWriter<(DateTimeOffset, byte[])> received) : ITopicHandler
    {
        public Task HandlePublishAsync(byte[] message, CancellationToken cancellationToken)
        {
            received.TryWrite((DateTimeOffset.UtcNow, message));
            return Task.CompletedTask;
        }
    }
}
