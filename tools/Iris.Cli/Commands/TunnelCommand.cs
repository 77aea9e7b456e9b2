using System.CommandLine;
using System.Text;
using Iris.Cli.CommandLine;
using Iris.Cli.Connection;

namespace Iris.Cli.Commands;

/// <summary>
/// <c>iris tunnel &lt;cluster&gt;</c>: a tunnel to one member. Each line of standard input is sent as one message (without
/// its line end); each message that comes back is printed. When standard input ends, the command goes on printing
/// until nothing arrived for <c>--linger</c>, then closes the tunnel gracefully (as <c>nc -q</c> does: a tunnel has no
/// half-close, and replies to the last lines are usually on their way). It ends at once when the member closes the
/// tunnel.
/// </summary>
internal static class TunnelCommand
{
    public static Command Create(CliContext cli)
    {
        var cluster = Arguments.Name("cluster", "The cluster to open the tunnel to; one member is chosen by load.");
        var timeout = Arguments.Timeout("How long a member may take to accept the tunnel. Default 10 s.");
        var linger = Arguments.Duration("--linger", [], "After standard input ends, keep printing until nothing arrived for this long, then close. Default 1 s.", zeroAllowed: true);
        var command = new Command("tunnel", "Open a tunnel to one member of a cluster: standard input lines go out as messages, messages that come back are printed.")
        {
            cluster, timeout, linger,
        };
        command.SetAction((parse, _) => RunAsync(cli, parse, parse.GetValue(cluster)!, parse.GetValue(timeout) ?? TimeSpan.FromSeconds(10), parse.GetValue(linger) ?? TimeSpan.FromSeconds(1)));
        return command;
    }

    private static async Task<int> RunAsync(CliContext cli, ParseResult parse, string cluster, TimeSpan timeout, TimeSpan linger)
    {
        await using var connection = await cli.ConnectAsync(parse);
        using var output = MessageWriter.ForStandardOutput();
        var tunnel = await connection.Iris.OpenTunnelAsync(cluster, timeout, cli.Interrupted);
        try
        {
            if (!Console.IsInputRedirected)
            {
                CliContext.Status($"tunnel to cluster '{cluster}' open: each line you type is a message; Ctrl-D closes it");
            }

            var lastArrival = Environment.TickCount64;
            var receiving = Task.Run(async () =>
            {
                await foreach (var message in tunnel.ReadAllAsync(cli.Interrupted))
                {
                    Volatile.Write(ref lastArrival, Environment.TickCount64);
                    output.Write(message);
                }
            });

            var sending = Task.Run(() => SendLinesAsync(tunnel, cli.Interrupted));
            if (await Task.WhenAny(sending, receiving) == sending && !ClosedByPeer(sending))
            {
                await sending;
                Volatile.Write(ref lastArrival, Environment.TickCount64);
                await LingerAsync(receiving, () => Volatile.Read(ref lastArrival), linger, cli.Interrupted);
            }

            if (receiving.IsCompleted || ClosedByPeer(sending))
            {
                // The member closed the tunnel (then the lines still unread are not sent) or it failed: say which.
                await receiving;
                return ExitCodes.Ok;
            }

            await tunnel.CloseAsync(cli.Interrupted);
            return ExitCodes.Ok;
        }
        catch (OperationCanceledException) when (cli.Interrupted.IsCancellationRequested)
        {
            // Ctrl-C: the tunnel closes gracefully below, after what was sent so far.
            return ExitCodes.Ok;
        }
        finally
        {
            await tunnel.DisposeAsync();
        }
    }

    /// <summary>Whether sending stopped because the member had closed the tunnel: an end, not a failure.</summary>
    private static bool ClosedByPeer(Task sending) =>
        sending.Exception?.InnerException is TunnelClosedException { Reason: TunnelCloseReason.ClosedByPeer };

    private static async Task SendLinesAsync(ITunnel tunnel, CancellationToken cancellationToken)
    {
        // Standard input is read on its own: a console read cannot be cancelled, and the command must not wait on it
        // once the member closed the tunnel.
        using var input = new StreamReader(Console.OpenStandardInput(), Encoding.UTF8);
        while (await input.ReadLineAsync(cancellationToken) is { } line)
        {
            await tunnel.SendAsync(Encoding.UTF8.GetBytes(line), cancellationToken);
        }
    }

    private static async Task LingerAsync(Task receiving, Func<long> lastArrival, TimeSpan linger, CancellationToken cancellationToken)
    {
        var quiet = (long)linger.TotalMilliseconds;
        while (!receiving.IsCompleted)
        {
            var waited = Environment.TickCount64 - lastArrival();
            if (waited >= quiet)
            {
                return;
            }

            await Task.WhenAny(receiving, Task.Delay(TimeSpan.FromMilliseconds(quiet - waited), cancellationToken));
            cancellationToken.ThrowIfCancellationRequested();
        }
    }
}
