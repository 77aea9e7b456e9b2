using System.Globalization;

namespace Iris.Chaos;

/// <summary>What a run does, from the command line: <c>--silos 4 --seconds 60 --kill-every 15 --seed 1 --json</c>.</summary>
internal sealed record ChaosSettings
{
    public int Silos { get; init; } = 4;

    public int Seconds { get; init; } = 60;

    public int KillEvery { get; init; } = 15;

    public int Seed { get; init; } = 1;

    public bool Json { get; init; }

    /// <summary>Exit with <see cref="BrokenPromiseExitCode"/> when the report shows a promise broken
    /// (<see cref="ChaosReport.BrokenPromises"/>): what <c>.ci/run</c> uses.</summary>
    public bool Check { get; init; }

    /// <summary>The exit code of a run that broke a promise, with <c>--check</c>.</summary>
    public const int BrokenPromiseExitCode = 3;

    /// <summary>Concurrent request callers in the runner's client.</summary>
    public int Callers { get; init; } = 16;

    /// <summary>Tunnels kept open at once (a failed one is replaced).</summary>
    public int Tunnels { get; init; } = 6;

    /// <summary>Broadcasts per second to the cluster.</summary>
    public int BroadcastsPerSecond { get; init; } = 10;

    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Overload mode: no kills; the middle half of the run overloads the <see cref="OverloadClusters"/> on the
    /// same silos and members, and the report compares the healthy cluster's throughput with the phase before.</summary>
    public bool Overload { get; init; }

    /// <summary>How many times its members' capacity each overloaded cluster is offered.</summary>
    public double OverloadFactor { get; init; } = 4;

    /// <summary>Where the members' files and the children's logs go; a fresh folder under the temp path by default.</summary>
    public string? Directory { get; init; }

    public const string Usage =
        "usage: Iris.Chaos [--silos N] [--seconds S] [--kill-every K] [--seed X] [--callers C] [--tunnels T] " +
        "[--broadcasts-per-second B] [--timeout-ms MS] [--overload [--overload-factor F]] [--dir PATH] [--json] [--check]";

    public static ChaosSettings Parse(string[] args)
    {
        var settings = new ChaosSettings();
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value. {Usage}");
            int Number() => int.Parse(Next(), CultureInfo.InvariantCulture);
            settings = args[i] switch
            {
                "--silos" => settings with { Silos = Number() },
                "--seconds" => settings with { Seconds = Number() },
                "--kill-every" => settings with { KillEvery = Number() },
                "--seed" => settings with { Seed = Number() },
                "--callers" => settings with { Callers = Number() },
                "--tunnels" => settings with { Tunnels = Number() },
                "--broadcasts-per-second" => settings with { BroadcastsPerSecond = Number() },
                "--timeout-ms" => settings with { RequestTimeout = TimeSpan.FromMilliseconds(Number()) },
                "--overload" => settings with { Overload = true },
                "--overload-factor" => settings with { OverloadFactor = double.Parse(Next(), CultureInfo.InvariantCulture) },
                "--dir" => settings with { Directory = Next() },
                "--json" => settings with { Json = true },
                "--check" => settings with { Check = true },
                _ => throw new ArgumentException($"unknown argument {args[i]}. {Usage}"),
            };
        }

        // Each silo and client process takes one port of the 16-port loopback discovery range: N silos, N members, the
        // runner and (with --overload) the overload callers.
        if (settings.Silos is < 1 or > 7)
        {
            throw new ArgumentException($"--silos must be 1 to 7 (silos, members, the runner and the overload callers share 16 discovery ports). {Usage}");
        }

        if (settings.Seconds < 1 || settings.KillEvery < 1 || settings.Callers < 1 || settings.Tunnels < 0 || settings.BroadcastsPerSecond < 0)
        {
            throw new ArgumentException($"--seconds, --kill-every and --callers must be positive. {Usage}");
        }

        if (settings.Overload && (settings.Seconds < OverloadPhases.MinimumSeconds || settings.OverloadFactor <= 0))
        {
            throw new ArgumentException($"--overload needs --seconds of at least {OverloadPhases.MinimumSeconds} and a positive --overload-factor. {Usage}");
        }

        return settings;
    }
}
