using Iris.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Iris.Chaos;

/// <summary><c>Iris.Chaos member &lt;file&gt; [overload]</c>: an Orleans client process serving cluster <c>chaos</c> with a
/// <see cref="ChaosMember"/> writing to &lt;file&gt;, and with <c>overload</c> each of the
/// <see cref="OverloadClusters"/> with a <see cref="SlowMember"/> writing to &lt;file&gt;<c>.overload</c> (a file of its
/// own: the chaos member forces each line to disk under the file's lock, which the slow members must not wait for). The network comes from
/// <c>Iris__Client__NetworkKey</c> and
/// <c>Iris__Client__DiscoveryPort</c>. Prints <c>READY</c> once registered; stops when its standard input closes
/// (the runner closed it, or the runner is gone).</summary>
internal static class MemberProgram
{
    public const string Cluster = "chaos";

    /// <summary>Appended to a member's file name for the file of its overloaded clusters' requests.</summary>
    public const string OverloadSuffix = ".overload";

    public static async Task<int> RunAsync(string file, bool overload)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.UseOrleansClient(client => client.UseIris());
        using var host = builder.Build();
        await host.StartAsync().ConfigureAwait(false);

        using var executions = new ExecutionFile(file);
        using var overloadExecutions = overload ? new ExecutionFile(file + OverloadSuffix) : null;
        var iris = host.Services.GetRequiredService<IIrisClient>();
        List<IAsyncDisposable> registrations = [await iris.RegisterAsync(Cluster, new ChaosMember(executions)).ConfigureAwait(false)];
        if (overload)
        {
            foreach (var cluster in OverloadClusters.All)
            {
                registrations.Add(await iris.RegisterAsync(cluster.Name, new SlowMember(cluster.HandlerTime, overloadExecutions!), OverloadClusters.Options).ConfigureAwait(false));
            }
        }

        Console.WriteLine("READY");
        while (await Console.In.ReadLineAsync().ConfigureAwait(false) is not null)
        {
            // Input is only watched for its end.
        }

        foreach (var registration in registrations)
        {
            await registration.DisposeAsync().ConfigureAwait(false);
        }

        await host.StopAsync().ConfigureAwait(false);
        return 0;
    }
}
