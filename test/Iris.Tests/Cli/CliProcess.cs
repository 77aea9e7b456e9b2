using System.Diagnostics;
using Iris.Tests.Support;

namespace Iris.Tests.Cli;

/// <summary>What one run of the <c>iris</c> command did.</summary>
internal sealed record CliResult(int ExitCode, string Output, string Error, TimeSpan Elapsed)
{
    public override string ToString() => $"exit code {ExitCode} after {Elapsed.TotalSeconds:0.0} s\nstdout:\n{Output}\nstderr:\n{Error}";
}

/// <summary>Runs the built <c>tools/Iris.Cli</c> (<c>dotnet Iris.Cli.dll …</c>) as its own process, on the test's Iris
/// network, with standard output and standard error kept apart.</summary>
internal static class CliProcess
{
    /// <summary>The environment that puts the command on <paramref name="network"/>: its key and its discovery ports,
    /// so that it never meets another test's silos, nor a developer's.</summary>
    public static Dictionary<string, string> Environment(IrisNetwork network) => new()
    {
        ["Iris__Client__NetworkKey"] = network.Key,
        ["Iris__Client__DiscoveryPort"] = network.DiscoveryPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>Starts a command that runs until it is interrupted (serve, subscribe).</summary>
    public static ChildProcess Start(IrisNetwork network, params string[] arguments) =>
        ChildProcess.Start("dotnet", [RepositoryPaths.Program("tools", "Iris.Cli"), .. arguments], Environment(network));

    /// <summary>Runs a command to its end, with <paramref name="input"/> on its standard input; fails the test if it
    /// takes longer than <paramref name="limit"/>.</summary>
    public static async Task<CliResult> RunAsync(IrisNetwork? network, string[] arguments, string input = "", TimeSpan? limit = null)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(RepositoryPaths.Program("tools", "Iris.Cli"));
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (name, value) in network is null ? [] : Environment(network))
        {
            start.Environment[name] = value;
        }

        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(input);
        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(limit ?? TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"iris {string.Join(' ', arguments)} did not exit within {limit}; stdout:\n{await output}\nstderr:\n{await error}");
        }

        var elapsed = clock.Elapsed;
        return new CliResult(process.ExitCode, await output, await error, elapsed);
    }
}
