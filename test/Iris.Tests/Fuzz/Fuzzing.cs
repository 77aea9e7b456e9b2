using System.Diagnostics;
using System.Runtime.CompilerServices;
using CsCheck;
using Xunit.Abstractions;

namespace Iris.Tests.Fuzz;

/// <summary>
/// Runs a fuzz target: <see cref="DefaultCases"/> cases (or as many as a test asks for), or, when the environment
/// variable <c>IRIS_FUZZ_SECONDS</c> is set, as many as fit in that many seconds. Prints to the test output how many
/// cases ran, how many failed and how long they took. A target that does not return within its time and a generous
/// margin fails as a hang.
/// </summary>
internal static class Fuzzing
{
    /// <summary>The environment variable that switches to the long mode: each target runs for that many seconds.</summary>
    public const string SecondsVariable = "IRIS_FUZZ_SECONDS";

    /// <summary>Cases per target in the normal run.</summary>
    public const int DefaultCases = 100_000;

    /// <summary>How long a target may take beyond its planned time before it counts as hung.</summary>
    private static readonly TimeSpan HangMargin = TimeSpan.FromMinutes(2);

    /// <summary>Seconds each target runs in the long mode, or null in the normal run.</summary>
    public static int? Seconds =>
        int.TryParse(Environment.GetEnvironmentVariable(SecondsVariable), out var seconds) && seconds > 0 ? seconds : null;

    /// <summary>The most a decoder may allocate for one input: four times its length and 64 KiB besides, so that a
    /// declared length far beyond the input must be refused before anything of that size is allocated.</summary>
    public static long AllocationBound(int inputLength) => (4L * inputLength) + (64 * 1024);

    /// <summary>Fails when <paramref name="allocated"/> bytes exceed <see cref="AllocationBound"/>.</summary>
    public static void CheckAllocation(string target, long allocated, int inputLength)
    {
        if (allocated > AllocationBound(inputLength))
        {
            throw new FuzzFailure($"{target} allocated {allocated} bytes for an input of {inputLength} bytes (bound {AllocationBound(inputLength)}).");
        }
    }

    /// <summary>Samples <paramref name="gen"/> and checks <paramref name="property"/> on each case, which throws
    /// (a <see cref="FuzzFailure"/> or anything else) to fail. CsCheck shrinks a failure and reports its seed.</summary>
    public static Task RunAsync<T>(ITestOutputHelper output, string target, Gen<T> gen, Action<T> property, int cases = DefaultCases, Func<T, string>? print = null) =>
        RunAsync(output, target, count => Task.Run(() => gen.Sample(
            value =>
            {
                Interlocked.Increment(ref count.Value);
                property(value);
            },
            iter: cases,
            time: Seconds ?? -1,
            print: print)));

    /// <summary>As <see cref="RunAsync{T}(ITestOutputHelper, string, Gen{T}, Action{T}, int, Func{T, string}?)"/>
    /// for an asynchronous property.</summary>
    public static Task RunAsync<T>(ITestOutputHelper output, string target, Gen<T> gen, Func<T, Task> property, int cases = DefaultCases, Func<T, string>? print = null) =>
        RunAsync(output, target, count => Task.Run(() => gen.SampleAsync(
            value =>
            {
                Interlocked.Increment(ref count.Value);
                return property(value);
            },
            iter: cases,
            time: Seconds ?? -1,
            print: print)));

    private static async Task RunAsync(ITestOutputHelper output, string target, Func<StrongBox<long>, Task> sample)
    {
        var seconds = Seconds;
        var count = new StrongBox<long>();
        var stopwatch = Stopwatch.StartNew();
        try
        {
            await sample(count).WaitAsync(TimeSpan.FromSeconds(seconds ?? 0) + HangMargin);
        }
        catch (TimeoutException)
        {
            output.WriteLine($"{target}: {Interlocked.Read(ref count.Value)} cases, hung after {stopwatch.Elapsed.TotalSeconds:F1} s");
            throw new FuzzFailure($"{target} did not finish within {HangMargin} of its planned time: a case hangs.");
        }
        catch (Exception)
        {
            output.WriteLine($"{target}: {Interlocked.Read(ref count.Value)} cases (shrinking included), 1 failure, {stopwatch.Elapsed.TotalSeconds:F1} s");
            throw;
        }

        output.WriteLine($"{target}: {Interlocked.Read(ref count.Value)} cases, 0 failures, {stopwatch.Elapsed.TotalSeconds:F1} s");
    }
}

/// <summary>A fuzz property that does not hold.</summary>
internal sealed class FuzzFailure(string message) : Exception(message);
