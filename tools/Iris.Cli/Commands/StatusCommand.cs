using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Iris.Cli.CommandLine;
using Iris.Cli.Connection;
using Iris.Status;
using Spectre.Console;

namespace Iris.Cli.Commands;

/// <summary><c>iris status</c>: the ring, the clusters and topics, their members per process and the capacities they
/// report, read from every silo at once (<see cref="IrisNetworkStatus"/>).</summary>
internal static class StatusCommand
{
    public static Command Create(CliContext cli)
    {
        var json = new Option<bool>("--json") { Description = "Write the status as one JSON object (every silo's full status)." };
        var command = new Command("status", "Show the network: its silos in ring order, the clusters and topics with their members per process and capacities.")
        {
            json,
        };
        command.SetAction((parse, _) => RunAsync(cli, parse, parse.GetValue(json)));
        return command;
    }

    private static async Task<int> RunAsync(CliContext cli, ParseResult parse, bool json)
    {
        await using var connection = await cli.ConnectAsync(parse);
        var network = await IrisNetworkStatus.GetAsync(connection.Grains, cancellationToken: cli.Interrupted);
        if (json)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(network, StatusJson.Options));
        }
        else
        {
            Write(network);
        }

        foreach (var silo in network.Unreachable)
        {
            CliContext.Status($"silo {silo.Silo} gave no status: {silo.Error}");
        }

        return ExitCodes.Ok;
    }

    private static void Write(NetworkStatus network)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });
        if (Console.IsOutputRedirected)
        {
            // Piped: whole lines, not the 80 columns Spectre assumes without a terminal.
            console.Profile.Width = 160;
        }

        var c = CultureInfo.InvariantCulture;
        console.MarkupLine(c, $"[bold]Ring[/]: {network.Silos.Count} silo{(network.Silos.Count == 1 ? string.Empty : "s")} answered");
        var ring = new Table().AddColumns("silo", "ring key", "overlay", "gateway", "in ring", "leaf set", "requests/s", "handled/s");
        foreach (var silo in network.Silos)
        {
            ring.AddRow(
                Safe(Short(silo.Silo)),
                silo.RingKey.Length >= 8 ? silo.RingKey[..8] : silo.RingKey,
                Safe(silo.OverlayAddress.Replace("tcp://", string.Empty, StringComparison.Ordinal)),
                Safe(silo.Gateway ?? "-"),
                silo.InRing ? "yes" : "[red]no[/]",
                silo.LeafSet.Count.ToString(c),
                silo.Traffic.Requests.ToString("0.#", c),
                silo.Traffic.Handled.ToString("0.#", c));
        }

        console.Write(ring);
        var names = network.Silos
            .SelectMany(s => s.Rendezvous.Select(r => (r.Kind, r.Name)).Concat(s.Served.Select(m => (m.Kind, m.Name))))
            .Distinct()
            .OrderBy(n => n.Kind)
            .ThenBy(n => n.Name, StringComparer.Ordinal)
            .ToList();
        if (names.Count == 0)
        {
            console.MarkupLine("No clusters or topics.");
            return;
        }

        var table = new Table().AddColumns("name", "kind", "split", "root silo", "process", "capacity (req/s)");
        foreach (var (kind, name) in names)
        {
            var splits = network.Silos.SelectMany(s => s.Rendezvous.Where(r => r.Kind == kind && r.Name == name).Select(r => (Root: s.Silo, r.Split, r.Processes)))
                .OrderBy(r => r.Split)
                .ToList();
            if (splits.Count == 0)
            {
                table.AddRow(Safe(name), kind.ToString(), "-", "-", "[grey]no split answered[/]", "-");
                continue;
            }

            foreach (var split in splits)
            {
                if (split.Processes.Count == 0)
                {
                    table.AddRow(Safe(name), kind.ToString(), split.Split.ToString(c), Safe(Short(split.Root)), "[grey]none[/]", "-");
                }

                foreach (var process in split.Processes)
                {
                    table.AddRow(
                        Safe(name),
                        kind.ToString(),
                        split.Split.ToString(c),
                        Safe(Short(split.Root)),
                        Safe(process.Silo is { } silo ? "silo " + Short(silo) : "client " + Short(process.Process)),
                        kind == NameKind.Cluster ? process.Capacity.ToString("0.#", c) : "-");
                }
            }
        }

        console.MarkupLine("[bold]Clusters and topics[/] (each name is split over rendezvous grains on their ring roots; every member process registers with each split)");
        console.Write(table);
    }

    /// <summary>Text from the network as it may be shown on a terminal: markup escaped, and control characters (which
    /// could drive the operator's terminal: names are anyone's to choose) shown as U+FFFD.</summary>
    private static string Safe(string text) => Markup.Escape(string.Create(text.Length, text, static (span, source) =>
    {
        for (var i = 0; i < source.Length; i++)
        {
            span[i] = char.IsControl(source[i]) ? '\uFFFD' : source[i];
        }
    }));

    /// <summary>A silo without its generation (<c>127.0.0.1:11111</c>), a client by the start of its id.</summary>
    private static string Short(string process) =>
        process.StartsWith("client/", StringComparison.Ordinal) ? process["client/".Length..][..Math.Min(8, process.Length - "client/".Length)]
        : process.Split('@')[0];

    private static class StatusJson
    {
        public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
        {
            Converters = { new JsonStringEnumConverter() },
            Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        };
    }
}
