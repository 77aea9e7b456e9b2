using System.Runtime.InteropServices;
using Iris.Chaos;

// Iris.Chaos: kills Iris silos under load and reports what the guarantees kept. See README.md.
// `Iris.Chaos member <file> [overload]` is the member process the runner starts for itself, and
// `Iris.Chaos overload-callers ...` the process that overloads the slow clusters (--overload).
if (args is ["member", var file, ..] && args.Length <= 3)
{
    return await MemberProgram.RunAsync(file, overload: args is [_, _, "overload"]);
}

if (args is ["overload-callers", ..])
{
    return await OverloadCallerProgram.RunAsync(args[1..]);
}

ChaosSettings settings;
try
{
    settings = ChaosSettings.Parse(args);
}
catch (Exception e) when (e is ArgumentException or FormatException)
{
    await Console.Error.WriteLineAsync(e.Message);
    return 2;
}

using var cancel = new CancellationTokenSource();

// The first Ctrl-C or SIGTERM ends the run through its finally blocks, which kill every child process; a second one
// kills them at once and exits.
void OnSignal(PosixSignalContext context)
{
    context.Cancel = true;
    if (!cancel.IsCancellationRequested)
    {
        cancel.Cancel();
    }
    else
    {
        ChildProcesses.KillAll();
        Environment.Exit(130);
    }
}

using var killOnCancel = cancel.Token.Register(ChildProcesses.KillAll);
using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);

try
{
    var report = await new ChaosRun(settings, Console.Error).RunAsync(cancel.Token);
    ChildProcesses.KillAll();
    Console.Out.WriteLine(report.ToJson(indented: !settings.Json));
    if (settings.Check && report.BrokenPromises() is { Count: > 0 } broken)
    {
        await Console.Error.WriteLineAsync($"promises broken: {string.Join("; ", broken)}");
        return ChaosSettings.BrokenPromiseExitCode;
    }

    return 0;
}
catch (OperationCanceledException) when (cancel.IsCancellationRequested)
{
    await Console.Error.WriteLineAsync("interrupted; child processes killed");
    return 130;
}
catch (Exception e)
{
    await Console.Error.WriteLineAsync($"chaos run failed: {e}");
    return 1;
}
finally
{
    ChildProcesses.KillAll();
}
