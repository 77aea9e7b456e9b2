using System.CommandLine;
using Iris.Cli.CommandLine;
using System.CommandLine.Help;
using Iris.Cli.Bench;
using Iris.Cli.Commands;
using Iris.Cli.Connection;

namespace Iris.Cli.Startup;

/// <summary>The <c>iris</c> command line: its commands, and how failures become one line on standard error and an exit
/// code (<see cref="ExitCodes"/>).</summary>
internal static class IrisCommandLine
{
    public static async Task<int> RunAsync(string[] args)
    {
        using var interruption = Interruption.Listen();
        var globals = new GlobalOptions();
        var cli = new CliContext(globals, interruption);
        // A command named iris rather than a RootCommand, which would take its name from the executable (Iris.Cli under
        // dotnet run, iris as an installed tool).
        var root = new Command("iris", "Talk to an Iris network from a shell. Connects as an Orleans client: gateways from the nodes' beacons on loopback and the development key unless told otherwise.")
        {
            new HelpOption(),
            new VersionOption(),
            RequestCommand.Create(cli),
            DisseminationCommands.CreateBroadcast(cli),
            DisseminationCommands.CreatePublish(cli),
            SubscribeCommand.Create(cli),
            ServeCommand.Create(cli),
            TunnelCommand.Create(cli),
            BenchCommand.Create(cli),
            StatusCommand.Create(cli),
        };
        foreach (var option in globals.All)
        {
            root.Options.Add(option);
        }

        // @file is a message read from a file here (see Payload), never a response file of more arguments.
        var parse = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors.DistinctBy(e => e.Message))
            {
                await Console.Error.WriteLineAsync($"iris: {error.Message}");
            }

            await Console.Error.WriteLineAsync($"Run '{CommandPath(parse)} --help' for usage.");
            return ExitCodes.Usage;
        }

        try
        {
            return await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null });
        }
        catch (OperationCanceledException) when (interruption.IsRequested)
        {
            return ExitCodes.Interrupted;
        }
        catch (OutputClosedException)
        {
            // The reader of standard output has what it wanted (iris subscribe | head): nothing to say, nothing failed.
            return ExitCodes.Ok;
        }
        catch (UsageException e)
        {
            return await FailAsync(e, ExitCodes.Usage);
        }
        catch (CannotConnectException e)
        {
            return await FailAsync(e, ExitCodes.CannotConnect);
        }
        catch (Exception e)
        {
            return await FailAsync(e, ExitCodes.Failed);
        }
    }

    /// <summary>One line: Iris' errors already name the cluster or topic and say what to do.</summary>
    private static async Task<int> FailAsync(Exception failure, int exitCode)
    {
        var message = failure is IrisException or UsageException or CannotConnectException ? failure.Message : $"{failure.GetType().Name}: {failure.Message}";
        await Console.Error.WriteLineAsync($"iris: {message.ReplaceLineEndings(" ")}");
        return exitCode;
    }

    private static string CommandPath(ParseResult parse)
    {
        var names = new List<string>();
        for (var result = parse.CommandResult; result is not null; result = result.Parent as System.CommandLine.Parsing.CommandResult)
        {
            names.Add(result.Command.Name);
        }

        names.Reverse();
        return string.Join(' ', names);
    }
}
