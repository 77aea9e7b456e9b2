using System.CommandLine;
using Iris.Cli.CommandLine;
using Iris.Cli.Connection;

namespace Iris.Cli.Commands;

/// <summary><c>iris request &lt;cluster&gt; &lt;message&gt;</c>: a request to one member, its reply on standard output.</summary>
internal static class RequestCommand
{
    public static Command Create(CliContext cli)
    {
        var cluster = Arguments.Name("cluster", "The cluster to send the request to.");
        var message = Arguments.Message();
        var timeout = Arguments.Timeout("How long to wait for each reply (at most 10 minutes). Default 10 s.");
        var count = Arguments.Count("Send the request this many times, one after the other, printing each reply.", 1);
        var command = new Command("request", "Send a request to one member of a cluster (chosen by load) and print its reply.")
        {
            cluster, message, timeout, count,
        };
        command.SetAction((parse, _) => RunAsync(cli, parse, parse.GetValue(cluster)!, parse.GetValue(message)!, parse.GetValue(timeout) ?? TimeSpan.FromSeconds(10), parse.GetValue(count)));
        return command;
    }

    private static async Task<int> RunAsync(CliContext cli, ParseResult parse, string cluster, string message, TimeSpan timeout, int count)
    {
        var request = await Payload.ReadAsync(message, cli.Interrupted);
        await using var connection = await cli.ConnectAsync(parse);
        using var output = MessageWriter.ForStandardOutput();
        for (var i = 0; i < count; i++)
        {
            output.Write(await connection.Iris.RequestAsync(cluster, request, timeout, cli.Interrupted));
        }

        return ExitCodes.Ok;
    }
}
