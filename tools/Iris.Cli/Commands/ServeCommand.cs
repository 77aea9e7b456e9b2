using System.CommandLine;
using Iris.Cli.CommandLine;
using Iris.Cli.Connection;
using Iris.Cli.Serving;

namespace Iris.Cli.Commands;

/// <summary><c>iris serve &lt;cluster&gt; --echo | --command "…"</c>: a member of a cluster until Ctrl-C, then leaves it
/// gracefully (requests it already took are answered).</summary>
internal static class ServeCommand
{
    public static Command Create(CliContext cli)
    {
        var cluster = Arguments.Name("cluster", "The cluster to serve.");
        var echo = new Option<bool>("--echo") { Description = "Reply to each request with the request itself; echo tunnel messages; print broadcasts." };
        var shell = new Option<string?>("--command", "-c")
        {
            Description = "Run this shell command per request, the request on its standard input; its standard output is the reply, and an exit code other than 0 fails the request with its standard error.",
            HelpName = "command line",
        };
        var concurrency = Arguments.OptionalInteger("--max-concurrent", [], "Requests this member handles at once; more wait or are refused as overloaded. Default 4 × processors.", 1, int.MaxValue);
        var idempotent = new Option<bool>("--idempotent") { Description = "Let Iris run a request again on another member if this process dies while it holds it." };
        var command = new Command("serve", "Become a member of a cluster, answering its requests, until Ctrl-C.")
        {
            cluster, echo, shell, concurrency, idempotent,
        };
        command.Validators.Add(result =>
        {
            var hasEcho = Arguments.Given(result, echo);
            var hasCommand = result.GetResult(shell) is { Implicit: false };
            if (hasEcho == hasCommand)
            {
                result.AddError("Give exactly one of --echo and --command \"…\": what the member answers with.");
            }
        });
        command.SetAction((parse, _) => RunAsync(cli, parse, parse.GetValue(cluster)!, parse.GetValue(shell), parse.GetValue(concurrency), parse.GetValue(idempotent)));
        return command;
    }

    private static async Task<int> RunAsync(CliContext cli, ParseResult parse, string cluster, string? shell, int? concurrency, bool idempotent)
    {
        if (shell is not null && string.IsNullOrWhiteSpace(shell))
        {
            throw new UsageException("--command needs a command line to run.");
        }

        await using var connection = await cli.ConnectAsync(parse);
        using var output = MessageWriter.ForStandardOutput();
        IClusterHandler handler = shell is null ? new EchoHandler(output) : new ShellCommandHandler(cluster, shell, output);
        var limits = concurrency is { } n ? new MemberLimits { MaxConcurrentRequests = n } : new MemberLimits();
        var registration = await connection.Iris.RegisterAsync(cluster, handler, new MemberOptions { Limits = limits, Idempotent = idempotent }, cli.Interrupted);
        CliContext.Status($"serving cluster '{cluster}' ({(shell is null ? "echo" : $"command: {shell}")}); Ctrl-C to leave");
        try
        {
            await Task.Delay(Timeout.Infinite, cli.Interrupted);
        }
        catch (OperationCanceledException)
        {
            // Ctrl-C: the way a member is meant to stop.
        }

        CliContext.Status($"leaving cluster '{cluster}'");
        await registration.DisposeAsync();
        CliContext.Status($"left cluster '{cluster}'");
        return ExitCodes.Ok;
    }
}
