using System.Diagnostics;

namespace Iris.Tests.Support;

/// <summary>Runs iproute2's <c>ip</c> (or <c>tc</c>) for tests that build network namespaces of their own.</summary>
internal static class IpCommand
{
    /// <summary>Runs <c>ip <paramref name="arguments"/></c>: whether it succeeded, and its error output.</summary>
    public static Task<(bool Ok, string Error)> RunAsync(string arguments) => RunAsync("ip", arguments);

    public static async Task<(bool Ok, string Error)> RunAsync(string program, string arguments)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo(program, arguments) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            var output = process.StandardOutput.ReadToEndAsync();
            var error = await process.StandardError.ReadToEndAsync();
            await output;
            await process.WaitForExitAsync();
            return (process.ExitCode == 0, error.Trim());
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (false, e.Message);
        }
    }

    /// <summary>The standard output of <c>ip <paramref name="arguments"/></c>; empty when it fails.</summary>
    public static async Task<string> OutputAsync(string arguments)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo("ip", arguments) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            var error = process.StandardError.ReadToEndAsync();
            var output = await process.StandardOutput.ReadToEndAsync();
            await error;
            await process.WaitForExitAsync();
            return process.ExitCode == 0 ? output : string.Empty;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return string.Empty;
        }
    }
}
