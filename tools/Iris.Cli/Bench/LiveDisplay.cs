using System.Globalization;
using Spectre.Console;

namespace Iris.Cli.Bench;

/// <summary>The live progress of a benchmark on a terminal (Spectre.Console): elapsed time against the run's length,
/// messages so far, the current rate and errors. It clears itself when done, so that only the results stay.</summary>
internal static class LiveDisplay
{
    private static readonly TimeSpan Refresh = TimeSpan.FromMilliseconds(250);

    public static Task<BenchResult> RunAsync(BenchRunner runner, BenchSettings settings, Task<BenchResult> run) =>
        AnsiConsole.Progress()
            .AutoClear(true)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .StartAsync(async context =>
            {
                var name = Markup.Escape($"{settings.Pattern.ToString().ToLowerInvariant()} '{settings.Target}'");
                var task = context.AddTask(name, maxValue: runner.Total.TotalSeconds);
                var (lastCount, lastTime) = (0L, TimeSpan.Zero);
                while (!run.IsCompleted)
                {
                    await Task.WhenAny(run, Task.Delay(Refresh));
                    var (count, time) = (runner.Completed, runner.Elapsed);
                    var rate = time > lastTime ? (count - lastCount) / (time - lastTime).TotalSeconds : 0;
                    (lastCount, lastTime) = (count, time);
                    var phase = time < settings.Warmup ? "[grey]warming up[/] " : string.Empty;
                    task.Description = string.Create(CultureInfo.InvariantCulture, $"{name} {phase}{count:N0} msgs, {rate:N0}/s, {(runner.Errors > 0 ? "[red]" : string.Empty)}{runner.Errors:N0} errors{(runner.Errors > 0 ? "[/]" : string.Empty)}");
                    task.Value = Math.Min(time.TotalSeconds, task.MaxValue);
                }

                task.Value = task.MaxValue;
                return await run;
            });
}
