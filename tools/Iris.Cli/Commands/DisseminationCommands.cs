using System.CommandLine;
using Iris.Cli.CommandLine;
using Iris.Cli.Connection;

namespace Iris.Cli.Commands;

/// <summary><c>iris broadcast &lt;cluster&gt; &lt;message&gt;</c> and <c>iris publish &lt;topic&gt; &lt;message&gt;</c>:
/// one message to every member of a cluster, or to every subscriber of a topic.</summary>
internal static class DisseminationCommands
{
    public static Command CreateBroadcast(CliContext cli)
    {
        var cluster = Arguments.Name("cluster", "The cluster whose members all get the message.");
        var message = Arguments.Message();
        var command = new Command("broadcast", "Send a message to every member of a cluster. Returns once the network accepted it for delivery.")
        {
            cluster, message,
        };
        command.SetAction((parse, _) => RunAsync(cli, parse, parse.GetValue(message)!, (iris, bytes, ct) => iris.BroadcastAsync(parse.GetValue(cluster)!, bytes, ct)));
        return command;
    }

    public static Command CreatePublish(CliContext cli)
    {
        var topic = Arguments.Name("topic", "The topic whose subscribers all get the message.");
        var message = Arguments.Message();
        var command = new Command("publish", "Publish a message to every subscriber of a topic. Returns once the network accepted it for delivery.")
        {
            topic, message,
        };
        command.SetAction((parse, _) => RunAsync(cli, parse, parse.GetValue(message)!, (iris, bytes, ct) => iris.PublishAsync(parse.GetValue(topic)!, bytes, ct)));
        return command;
    }

    private static async Task<int> RunAsync(CliContext cli, ParseResult parse, string message, Func<IIrisClient, byte[], CancellationToken, Task> send)
    {
        var bytes = await Payload.ReadAsync(message, cli.Interrupted);
        await using var connection = await cli.ConnectAsync(parse);
        await send(connection.Iris, bytes, cli.Interrupted);
        return ExitCodes.Ok;
    }
}
