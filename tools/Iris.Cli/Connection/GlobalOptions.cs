using System.CommandLine;
using Iris.Cli.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Net;

namespace Iris.Cli.Connection;

/// <summary>The options every command takes: how to reach the network, and how much to say.</summary>
internal sealed class GlobalOptions
{
    public static readonly TimeSpan DefaultConnectTimeout = TimeSpan.FromSeconds(10);

    public Option<string[]> Gateway { get; } = new("--gateway", "-g")
    {
        Description = "A gateway (ip:port) to connect to instead of listening to the nodes' beacons; repeatable. Default: Iris__Client__Gateways__0…, else beacons.",
        HelpName = "ip:port",
        Recursive = true,
        Arity = ArgumentArity.OneOrMore,
    };

    public Option<string?> KeyFile { get; } = new("--key-file")
    {
        Description = "File holding the network key (base64). Default: Iris__Client__NetworkKey or Iris__Client__KeyFile, else the development key ~/.iris/network-key.",
        HelpName = "path",
        Recursive = true,
    };

    public Option<int?> DiscoveryPort { get; } = Arguments.OptionalInteger("--discovery-port", [], "First UDP port of the loopback discovery range the nodes beacon to. Default: Iris__Client__DiscoveryPort, else 14142.", 1, 65535);

    public Option<TimeSpan?> ConnectTimeout { get; } = Arguments.Duration("--connect-timeout", [], "How long connecting to the network may take. Default 10 s.");

    public Option<bool> Verbose { get; } = new("--verbose", "-v")
    {
        Description = "Write Orleans' and Iris' logs to standard error.",
        Recursive = true,
    };

    public GlobalOptions()
    {
        ConnectTimeout.Recursive = true;
        DiscoveryPort.Recursive = true;
        DiscoveryPort.HelpName = "port";
        Gateway.Validators.Add(result =>
        {
            foreach (var token in result.Tokens)
            {
                if (!IPEndPoint.TryParse(token.Value.Replace("tcp://", string.Empty, StringComparison.Ordinal), out var endpoint) || endpoint.Port == 0)
                {
                    result.AddError($"--gateway '{token.Value}' is not an ip:port endpoint (for example 127.0.0.1:30000).");
                }
            }
        });
    }

    public IEnumerable<Option> All => [Gateway, KeyFile, DiscoveryPort, ConnectTimeout, Verbose];

    public ConnectionSettings Settings(ParseResult parse) => new(
        parse.GetValue(Gateway) ?? [],
        parse.GetValue(KeyFile),
        parse.GetValue(DiscoveryPort),
        parse.GetValue(ConnectTimeout) ?? DefaultConnectTimeout,
        parse.GetValue(Verbose));
}
