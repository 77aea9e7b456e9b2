using System.Diagnostics;

namespace Iris.Cli.Serving;

/// <summary>One run of a shell command with a message on its standard input: what it wrote and how it exited.</summary>
internal sealed record ShellCommandResult(int ExitCode, byte[] Output, string Error);

/// <summary>Runs a command line through the system shell (<c>/bin/sh -c</c>, or <c>cmd /c</c> on Windows).</summary>
internal static class ShellCommand
{
    public static async Task<ShellCommandResult> RunAsync(string commandLine, byte[] input, IReadOnlyDictionary<string, string> environment, CancellationToken cancellationToken)
    {
        var start = OperatingSystem.IsWindows() ? new ProcessStartInfo("cmd.exe") { ArgumentList = { "/c", commandLine } } : new ProcessStartInfo("/bin/sh") { ArgumentList = { "-c", commandLine } };
        start.RedirectStandardInput = true;
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"The shell did not start for '{commandLine}'.");
        try
        {
            // Output is read while input is written: a command that answers before reading all its input must not
            // block on a full pipe while this side blocks on writing.
            using var output = new MemoryStream();
            var reading = process.StandardOutput.BaseStream.CopyToAsync(output, cancellationToken);
            var error = process.StandardError.ReadToEndAsync(cancellationToken);
            try
            {
                await process.StandardInput.BaseStream.WriteAsync(input, cancellationToken);
                process.StandardInput.Close();
            }
            catch (IOException)
            {
                // The command exited or closed its input without reading all of it: its output still counts.
            }

            await reading;
            var errorText = await error;
            await process.WaitForExitAsync(cancellationToken);
            return new ShellCommandResult(process.ExitCode, output.ToArray(), errorText);
        }
        catch (OperationCanceledException)
        {
            Kill(process);
            throw;
        }
    }

    private static void Kill(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }
}
