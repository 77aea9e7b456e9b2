using System.Globalization;
using System.Text.Json;

namespace Iris.Chaos;

/// <summary>The runner's handle on the overload callers' process (<see cref="OverloadCallerProgram"/>): started before
/// the load, told when the overload phase starts and stops, and asked for what its callers saw.</summary>
internal sealed class OverloadCallers(ChildProcess process, string refusedFile, int members)
{
    private int _rounds;

    /// <summary>How long after the phase the callers may take to report: every request sent ends within its timeout
    /// plus 2 s; more is a hang, reported as such.</summary>
    private static readonly TimeSpan ResultLimit = TimeSpan.FromSeconds(30);

    public ChildProcess Process => process;

    /// <summary>The file of the ids refused as overloaded (<c>O id</c> lines).</summary>
    public string RefusedFile => refusedFile;

    /// <summary>Offers each overloaded cluster <paramref name="factor"/> times what its <paramref name="members"/>
    /// members can complete.</summary>
    public static async Task<OverloadCallers> StartAsync(ChaosNetwork network, int members, double factor, TimeSpan timeout, int seconds, CancellationToken cancellationToken)
    {
        var loads = OverloadClusters.All.Select(c => (Cluster: c, Rate: factor * c.Capacity(members))).ToArray();
        var file = Path.Combine(network.Directory, "overload-refused.ids");
        string[] arguments =
        [
            file,
            ((int)timeout.TotalMilliseconds).ToString(CultureInfo.InvariantCulture),
            seconds.ToString(CultureInfo.InvariantCulture),
            .. loads.Select(l => $"{l.Cluster.Name}={l.Rate.ToString(CultureInfo.InvariantCulture)}"),
        ];
        var process = await network.StartOverloadCallersAsync(arguments, cancellationToken).ConfigureAwait(false);
        return new OverloadCallers(process, file, members);
    }

    public Task StartAsync() => process.SendLineAsync("START");

    public void Kill() => process.Kill();

    /// <summary>Stops sending and returns, once every request sent has its outcome, what the callers saw since they
    /// started.</summary>
    public async Task<OverloadCallerResult> StopAsync(CancellationToken cancellationToken)
    {
        await process.SendLineAsync("STOP").ConfigureAwait(false);
        var prefix = $"{OverloadCallerProgram.Result}{++_rounds} ";
        var line = await process.WaitForLineAsync(l => l.StartsWith(prefix, StringComparison.Ordinal), ResultLimit, "the overload callers' result", cancellationToken).ConfigureAwait(false);
        var result = JsonSerializer.Deserialize<OverloadCallerResult>(line[prefix.Length..], OverloadCallerProgram.Json)
            ?? throw new InvalidOperationException("the overload callers' result is empty");
        return result with
        {
            Clusters = [.. result.Clusters.Select(r => r with { CapacityPerSecond = Math.Round(OverloadClusters.Find(r.Cluster).Capacity(members), 1) })],
        };
    }
}
