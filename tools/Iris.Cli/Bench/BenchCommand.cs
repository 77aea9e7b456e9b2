using System.CommandLine;
using Iris.Cli.CommandLine;
using Iris.Cli.Connection;

namespace Iris.Cli.Bench;

/// <summary><c>iris bench request|broadcast|publish|tunnel &lt;name&gt;</c>: throughput and latency of one pattern.</summary>
internal static class BenchCommand
{
    public static Command Create(CliContext cli)
    {
        var command = new Command("bench", "Measure throughput (msgs/s, MB/s) and latency (p50, p90, p99, p99.9) of one pattern.");
        command.Subcommands.Add(Pattern(cli, BenchPattern.Request, "cluster", "Requests to members of a cluster (start one with iris serve <cluster> --echo); a sample is a request's round trip."));
        command.Subcommands.Add(Pattern(cli, BenchPattern.Broadcast, "cluster", "Broadcasts to a cluster; a sample is from the broadcast to its delivery to the benchmark's own member (every member gets the messages)."));
        command.Subcommands.Add(Pattern(cli, BenchPattern.Publish, "topic", "Publications on a topic; a sample is from the publication to its delivery to the benchmark's own subscriber."));
        command.Subcommands.Add(Pattern(cli, BenchPattern.Tunnel, "cluster", "Messages on one tunnel per client to members of a cluster (iris serve <cluster> --echo); a sample is a message's round trip."));
        return command;
    }

    private static Command Pattern(CliContext cli, BenchPattern pattern, string targetKind, string description)
    {
        var target = Arguments.Name(targetKind, $"The {targetKind} to send to.");
        var clients = Arguments.Integer("--clients", [], "Callers sending at once; each sends its next message when the last one's round trip completed.", 1, 10_000, 4);
        var minimum = pattern is BenchPattern.Broadcast or BenchPattern.Publish ? DisseminationWorkload.HeaderBytes : 0;
        var size = Arguments.Integer("--size", [], $"Bytes of each message (at least {minimum}).", minimum, 16 * 1024 * 1024, 64);
        size.HelpName = "bytes";
        var duration = Arguments.Duration("--duration", ["-d"], "How long to measure (seconds, or with a unit: 500ms, 1m). Default 10 s.");
        var warmup = Arguments.Duration("--warmup", [], "How long to send before measuring, not counted (0 for none). Default 1 s.", zeroAllowed: true);
        var timeout = Arguments.Timeout("How long one round trip may take before it counts as an error. Default 10 s.");
        var json = new Option<bool>("--json") { Description = "Write the results as one JSON object." };
        var csv = new Option<bool>("--csv") { Description = "Write the results as a CSV header line and one row." };
        var command = new Command(pattern.ToString().ToLowerInvariant(), description) { target, clients, size, duration, warmup, timeout, json, csv };
        command.Validators.Add(result =>
        {
            if (Arguments.Given(result, json) && Arguments.Given(result, csv))
            {
                result.AddError("Give at most one of --json and --csv.");
            }
        });
        command.SetAction((parse, _) =>
        {
            var format = parse.GetValue(json) ? BenchFormat.Json : parse.GetValue(csv) ? BenchFormat.Csv : BenchFormat.Text;
            var settings = new BenchSettings(pattern, parse.GetValue(target)!, parse.GetValue(clients), parse.GetValue(size), parse.GetValue(duration) ?? TimeSpan.FromSeconds(10), parse.GetValue(warmup) ?? TimeSpan.FromSeconds(1), parse.GetValue(timeout) ?? TimeSpan.FromSeconds(10), format);
            return RunAsync(cli, parse, settings);
        });
        return command;
    }

    private static async Task<int> RunAsync(CliContext cli, ParseResult parse, BenchSettings settings)
    {
        var dissemination = settings.Pattern is BenchPattern.Broadcast or BenchPattern.Publish;
        var connecting = new[] { cli.ConnectAsync(parse) }.Concat(dissemination ? [cli.ConnectAsync(parse)] : []).ToArray();
        IrisConnection[] connections;
        try
        {
            connections = await Task.WhenAll(connecting);
        }
        catch (Exception)
        {
            foreach (var opened in connecting.Where(c => c.IsCompletedSuccessfully))
            {
                await opened.Result.DisposeAsync();
            }

            throw;
        }

        try
        {
            IBenchWorkload workload = settings.Pattern switch
            {
                BenchPattern.Request => new RequestWorkload(connections[0].Iris, settings),
                BenchPattern.Tunnel => new TunnelWorkload(connections[0].Iris, settings),
                _ => new DisseminationWorkload(connections[0].Iris, connections[1].Iris, settings),
            };
            await using (workload)
            {
                await workload.StartAsync(cli.Interrupted);
                var runner = new BenchRunner(workload, settings);
                var run = runner.RunAsync(cli.Interrupted);
                var result = Console.IsOutputRedirected ? await run : await LiveDisplay.RunAsync(runner, settings, run);
                Console.Out.Write(settings.Format switch
                {
                    BenchFormat.Json => result.ToJson() + "\n",
                    BenchFormat.Csv => result.ToCsv() + "\n",
                    _ => result.ToText(),
                });
                Console.Out.Flush();
                if (result.Messages == 0)
                {
                    CliContext.Status($"no message completed its round trip{(result.Error is null ? "." : $"; the last error: {result.Error}")}");
                    return ExitCodes.Failed;
                }

                return ExitCodes.Ok;
            }
        }
        finally
        {
            foreach (var connection in connections)
            {
                await connection.DisposeAsync();
            }
        }
    }
}
