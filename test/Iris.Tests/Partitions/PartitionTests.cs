using System.Globalization;
using System.Text;
using Iris.Overlay.Security;
using Iris.Tests.Support;
using Xunit.Abstractions;

namespace Iris.Tests.Partitions;

/// <summary>
/// Five <c>Iris.Silo</c> processes, each in a network namespace of its own on one switch (<see cref="SwitchedNetwork"/>),
/// split 3/2 for 30 seconds and healed. The membership table is one replicated record whose reads and writes need a
/// majority of its acceptors, so the majority side must go on (serve requests, declare the minority dead) and the
/// minority must change nothing; after healing the minority silos learn they were declared dead and come back as new
/// silos, and the network is one cluster of five again. Silo 3 runs in production mode and exits with code 3, and the
/// test, as its supervisor would, starts it again; silo 4 runs in development mode (with the same explicit settings)
/// and starts its new silo itself, so both ways back are checked. Every process's output is kept in a directory under
/// the temporary folder, named in the test's output.
/// </summary>
public sealed class PartitionTests(ITestOutputHelper output)
{
    private const int Silos = 5;
    private const int SupervisedSilo = 3;
    private const int SelfRestartingSilo = 4;
    /// <summary>The cluster the callers call: one member process in every namespace, not idempotent, printing each
    /// request it runs. The silos' own echo members serve another cluster, so every request is counted.</summary>
    private const string Cluster = "audit";
    private static readonly int[] Majority = [0, 1, 2];
    private static readonly int[] Minority = [SupervisedSilo, SelfRestartingSilo];
    private static readonly TimeSpan Hold = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Observe = TimeSpan.FromSeconds(12);

    /// <summary>How long a silo that learned it was declared dead may take to stop (its other silos refuse its calls:
    /// nothing it does on the way out may wait for them).</summary>
    private static readonly TimeSpan StopLimit = TimeSpan.FromSeconds(20);

    /// <summary>How long after the first look at the healed cluster's activations each key may still have two: a few
    /// of a rendezvous' 5-s root checks.</summary>
    private static readonly TimeSpan SettleLimit = TimeSpan.FromSeconds(30);

    [SkippableFact]
    public async Task A_3_2_split_keeps_the_majority_serving_leaves_the_table_to_it_and_heals_into_one_cluster()
    {
        var (network, reason) = await SwitchedNetwork.TryCreateAsync(Silos);
        Skip.If(network is null, $"Network namespaces cannot be created here ({reason}); the partition test runs only where they can.");
        var run = new Run(network, output);
        try
        {
            await run.ExecuteAsync();
        }
        finally
        {
            await run.DisposeAsync();
            await network.DisposeAsync();
        }
    }

    /// <summary>One run of the scenario: the processes, what they printed and when, and the measurements.</summary>
    private sealed class Run(SwitchedNetwork network, ITestOutputHelper output) : IAsyncDisposable
    {
        private readonly string _key = Convert.ToBase64String(NetworkKey.Generate().Bytes);
        private readonly List<ChildProcess>[] _silos = [.. Enumerable.Range(0, Silos).Select(_ => new List<ChildProcess>())];
        private readonly List<(string Name, ChildProcess Process)> _clients = [];
        private readonly List<ChildProcess> _members = [];
        private readonly DateTime _start = DateTime.UtcNow;
        private readonly StringBuilder _report = new();

        private string Endpoint(int silo) => $"{network.Address(silo)}:11111";

        private ChildProcess Current(int silo) => _silos[silo][^1];

        public async Task ExecuteAsync()
        {
            // One cluster of five, and a caller in every namespace whose only gateway is that namespace's silo.
            for (var i = 0; i < Silos; i++)
            {
                StartSilo(i);
            }

            var all = Enumerable.Range(0, Silos).ToArray();
            await UntilAsync(() => all.All(i => ActiveView(i) is { } view && view.SetEquals(all.Select(Endpoint))), TimeSpan.FromSeconds(90), "the five silos did not form one Orleans cluster of five");
            Note($"one cluster of 5 after {Since(_start)}");
            foreach (var i in all)
            {
                // Production silos listen and advertise on the overlay's address (Iris:Silo:Address unset).
                Assert.True(
                    Current(i).Lines.Any(l => l.Contains($"listening: silo-to-silo on {Endpoint(i)}, clients on {network.Address(i)}:30000", StringComparison.Ordinal)),
                    $"silo {i} does not listen on its namespace's address {network.Address(i)}");
            }

            Note(await network.TryAddDelayAndLossAsync() ? "links: netem 5 ms delay, 1% loss" : "links: no netem on this kernel, plain veth");
            // A member of the audited cluster in every namespace (not idempotent: each request runs at most once), each
            // printing every request it runs; then a caller in every namespace.
            foreach (var i in all)
            {
                _members.Add(StartClient($"member-{i}", i, [Cluster, "--audit"]));
            }

            foreach (var member in _members)
            {
                await member.WaitForAsync(lines => lines.Contains("READY"), TimeSpan.FromSeconds(60), "member registered");
            }

            var callers = all.Select(i => StartClient($"caller-{i}", i, ["--call", Cluster])).ToArray();
            for (var i = 0; i < Silos; i++)
            {
                var caller = callers[i];
                await UntilAsync(() => Calls(caller).Any(c => c.Ok > 0), TimeSpan.FromSeconds(60), $"requests through silo {i} did not succeed before the split");
            }

            // Split 3/2. The minority's gateway is asked for the table at once: it must not get it while split.
            await network.SplitAsync(Minority);
            var split = DateTime.UtcNow;
            Note("split: silos 3 and 4 apart");
            var minorityRead = TryReadTableAsync(callers[SelfRestartingSilo], Hold);

            // (1) The majority declares the two minority silos dead and keeps answering.
            var majorityEndpoints = Majority.Select(Endpoint).ToHashSet();
            await UntilAsync(
                () => Majority.All(i => ActiveView(i) is { } view && view.SetEquals(majorityEndpoints)),
                TimeSpan.FromSeconds(60),
                "the majority did not declare the two minority silos dead within 60 s of the split");
            var declared = DateTime.UtcNow;
            Note($"majority declared the minority dead {Since(split)} after the split");

            // (2) The table as the majority has it: the minority never wrote to it.
            var duringSplit = await ReadTableAsync(callers[0], TimeSpan.FromSeconds(30));
            Assert.True(duringSplit.Failure is null, $"the majority could not read the membership table during the split: {duringSplit.Failure}");
            CheckTable(duringSplit.Rows, healed: false);

            // Held 30 s, and at least 12 s past the declaration to see the majority serve without the minority.
            var heal = split + Hold > declared + Observe ? split + Hold : declared + Observe;
            if (heal - DateTime.UtcNow is { Ticks: > 0 } rest)
            {
                await Task.Delay(rest);
            }

            var read = minorityRead.IsCompleted ? await minorityRead : default;
            await network.HealAsync();
            var healed = DateTime.UtcNow;
            Assert.True(read.Rows is null || read.Failure is not null, "the minority side read the membership table during the split: " + string.Join(" | ", read.Rows ?? []));
            Assert.True(read.Failure?.Contains("CodecNotFound", StringComparison.Ordinal) != true, $"the minority's failure to read the table did not reach its client as itself: {read.Failure}");
            Note($"healed {Since(split)} after the split; the minority's read of the table during the split: {read.Failure ?? "no answer"}");

            // A request sent just before the declaration may still run into its timeout (3 s) on a minority member.
            var afterDeclared = declared + TimeSpan.FromSeconds(3);
            foreach (var i in all)
            {
                Note($"requests through silo {i} during the split: {TallyOf(callers[i], split, healed)}; from 3 s after the declaration: {TallyOf(callers[i], afterDeclared, healed)}; all succeed from {StableFrom(callers[i], split, healed)} after the split");
            }

            foreach (var i in Majority)
            {
                var tally = TallyOf(callers[i], afterDeclared, healed);
                Assert.True(
                    tally.Failed == 0 && tally.Ok >= 10,
                    $"the majority did not keep answering through silo {i} once the minority was declared dead: {tally} (per second: {string.Join(", ", Calls(callers[i]).Where(c => c.At > declared && c.At < healed).Select(c => c.Text))})");
                Assert.True(_silos[i].Count == 1 && !Current(i).HasExited, $"majority silo {i} stopped during the split:\n{Tail(Current(i))}");
            }

            // (3) The minority silos learn they were declared dead and come back as new silos: silo 3 exits with code 3
            // and the test, as its supervisor, starts it again; silo 4 starts a new silo in its own process.
            var supervised = Current(SupervisedSilo);
            var exited = UntilAsync(() => supervised.HasExited, TimeSpan.FromSeconds(60), "minority silo 3 (production) did not stop after the heal: it did not learn it was declared dead");
            var restarted = UntilAsync(() => RestartedAt(SelfRestartingSilo) is not null, TimeSpan.FromSeconds(60), "minority silo 4 (development) did not start a new silo after the heal: it did not learn it was declared dead");
            await exited;
            var exitedAt = DateTime.UtcNow;
            Assert.True(supervised.ExitCode == 3, $"minority silo 3 exited with code {supervised.ExitCode}, not 3 (declared dead):\n{Tail(supervised)}");
            Assert.Contains(supervised.Lines, l => l.Contains("was declared dead by its cluster and stops", StringComparison.Ordinal));
            Assert.Contains(supervised.Lines, l => l.Contains("exiting with code 3 so that its supervisor starts it again", StringComparison.Ordinal));
            Note($"silo 3 learned it was dead {Since(healed, DeclaredAt(supervised))} after the heal and exited with code 3 {Since(healed, exitedAt)} after the heal; started again");
            Assert.True(exitedAt - DeclaredAt(supervised) < StopLimit, $"minority silo 3 took {Since(DeclaredAt(supervised), exitedAt)} to stop once it learned it was dead:\n{Tail(supervised)}");
            StartSilo(SupervisedSilo);
            await restarted;
            Note($"silo 4 learned it was dead {Since(healed, DeclaredAt(Current(SelfRestartingSilo)))} after the heal and started a new silo in its process {Since(healed, RestartedAt(SelfRestartingSilo)!.Value)} after the heal");
            Assert.True(
                RestartedAt(SelfRestartingSilo)!.Value - DeclaredAt(Current(SelfRestartingSilo)) < StopLimit,
                $"minority silo 4 took {Since(DeclaredAt(Current(SelfRestartingSilo)), RestartedAt(SelfRestartingSilo)!.Value)} to stop its dead silo and start a new one");

            await UntilAsync(() => all.All(i => ActiveView(i) is { } view && view.SetEquals(all.Select(Endpoint))), TimeSpan.FromSeconds(90), "the network did not become one cluster of five again after the heal");
            var oneCluster = DateTime.UtcNow;
            Note($"one cluster of 5 again, every silo's view the same, {Since(healed)} after the heal");
            var afterHeal = await ReadTableAsync(callers[0], TimeSpan.FromSeconds(30));
            Assert.True(afterHeal.Failure is null, $"the membership table could not be read after the heal: {afterHeal.Failure}");
            CheckTable(afterHeal.Rows, healed: true);

            // (4) Requests succeed through every silo again; the callers of silos 3 and 4 found their silo's new
            // generation at the same address on their own.
            for (var i = 0; i < Silos; i++)
            {
                var caller = callers[i];
                await UntilAsync(
                    () => Calls(caller).Where(c => c.At > oneCluster).TakeLast(3) is var last && last.Count() == 3 && last.All(c => c.Ok > 0 && c.Failed == 0),
                    TimeSpan.FromSeconds(60),
                    $"requests through silo {i} do not succeed after the heal");
            }

            Note($"requests succeed through every silo {Since(healed)} after the heal");
            foreach (var i in all)
            {
                Note($"requests through silo {i} from the heal: {TallyOf(callers[i], healed, DateTime.UtcNow)}");
            }

            // (5) One activation per rendezvous key (and per member host) in the healed cluster.
            await CheckOneActivationPerKeyAsync(callers[0]);

            // (6) No request ran twice, every request that succeeded ran, and every reply was its request's.
            await CheckAtMostOnceAsync(callers);
        }

        /// <summary>
        /// Stops the callers and compares what they sent with what the members ran: a request ran at most once in all
        /// members together (they are not idempotent, so Iris never sends one twice, whatever the partition did), a
        /// request that succeeded ran exactly once, and every reply carried its own request.
        /// </summary>
        private async Task CheckAtMostOnceAsync(ChildProcess[] callers)
        {
            foreach (var caller in callers)
            {
                await caller.SendAsync("stop");
            }

            var sent = new Dictionary<string, (int Sent, HashSet<string> Failed)>(StringComparer.Ordinal);
            foreach (var caller in callers)
            {
                await caller.WaitForAsync(lines => lines.Any(l => l.StartsWith("STOPPED ", StringComparison.Ordinal)), TimeSpan.FromSeconds(10), "caller stopped");
                var lines = caller.Lines;
                Assert.True(!lines.Any(l => l.StartsWith("WRONG ", StringComparison.Ordinal)), $"a caller got a reply that was not its request's: {string.Join(" | ", lines.Where(l => l.StartsWith("WRONG ", StringComparison.Ordinal)))}");
                var count = int.Parse(lines.First(l => l.StartsWith("STOPPED ", StringComparison.Ordinal))["STOPPED sent=".Length..], CultureInfo.InvariantCulture);
                sent[caller.Id.ToString(CultureInfo.InvariantCulture)] = (count, [.. lines.Where(l => l.StartsWith("FAILED ", StringComparison.Ordinal)).Select(l => l.Split(' ')[1])]);
            }

            var succeeded = sent.SelectMany(c => Enumerable.Range(0, c.Value.Sent).Select(n => $"{c.Key}-{n}").Where(id => !c.Value.Failed.Contains(id))).ToList();
            Dictionary<string, int> Runs() => _members.SelectMany(m => m.Lines).Where(l => l.StartsWith("RAN ", StringComparison.Ordinal))
                .GroupBy(l => l["RAN ".Length..], StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);

            // A member prints what it ran before it replies, but the test reads the two processes' output separately.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (succeeded.Any(id => !Runs().ContainsKey(id)) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(200);
            }

            var runs = Runs();
            var twice = runs.Where(r => r.Value > 1).Select(r => $"{r.Key} ran {r.Value} times").ToList();
            var notRun = succeeded.Where(id => !runs.ContainsKey(id)).ToList();
            var failed = sent.Sum(c => c.Value.Failed.Count);
            Note($"requests sent {sent.Sum(c => c.Value.Sent)}, succeeded {succeeded.Count}, failed {failed} (of which ran anyway {sent.Sum(c => c.Value.Failed.Count(runs.ContainsKey))}); ran twice {twice.Count}; succeeded but not run {notRun.Count}");
            Assert.True(twice.Count == 0, $"requests ran more than once: {string.Join(", ", twice.Take(20))}");
            Assert.True(notRun.Count == 0, $"requests succeeded that no member ran: {string.Join(", ", notRun.Take(20))}");
        }

        /// <summary>
        /// Asks the healed cluster for the activations of Iris' keyed grains until each key has one, on one silo, for at
        /// most <see cref="SettleLimit"/>. Right after the heal two silos that rejoined may both hold a rendezvous for a
        /// while: Orleans' grain directory and the ring settle after the cluster's view does, and a rendezvous that is not
        /// on its name's ring root steps aside at its next check (every 5 s). How long that took is noted.
        /// </summary>
        private async Task CheckOneActivationPerKeyAsync(ChildProcess caller)
        {
            var asked = DateTime.UtcNow;
            while (true)
            {
                var before = caller.Lines.Length;
                await caller.SendAsync("activations");
                await caller.WaitForAsync(lines => lines.Skip(before).Any(l => l.StartsWith("ACTIVATIONS ", StringComparison.Ordinal)), TimeSpan.FromSeconds(30), "activations listed");
                var answer = caller.Lines.Skip(before).ToList();
                var end = answer.First(l => l.StartsWith("ACTIVATIONS ", StringComparison.Ordinal));
                Assert.True(end == "ACTIVATIONS END", $"the activations could not be listed: {end}");
                var activations = answer.TakeWhile(l => l != end).Where(l => l.StartsWith("ACTIVATION ", StringComparison.Ordinal)).Select(l => l.Split(' ')).ToList();
                var rendezvous = activations.Count(a => a[1].Contains("Rendezvous", StringComparison.Ordinal));
                var duplicated = activations.GroupBy(a => a[2], StringComparer.Ordinal).Where(g => g.Count() > 1)
                    .Select(g => $"{g.Key} on {string.Join(", ", g.Select(a => a[3]))}").ToList();
                Note($"activations {Since(asked)} after the first look: {rendezvous} rendezvous, {activations.Count - rendezvous} member hosts; keys with more than one: {duplicated.Count}{(duplicated.Count > 0 ? $" ({string.Join(" | ", duplicated)})" : string.Empty)}");
                Assert.True(rendezvous > 0, $"no rendezvous activation was listed: {string.Join(" | ", answer)}");
                if (duplicated.Count == 0)
                {
                    return;
                }

                Assert.True(DateTime.UtcNow - asked < SettleLimit, $"keys with more than one activation {SettleLimit} after the heal settled: {string.Join(" | ", duplicated)}");
                await Task.Delay(TimeSpan.FromSeconds(2));
            }
        }

        /// <summary>When a silo process logged that its silo was declared dead.</summary>
        private static DateTime DeclaredAt(ChildProcess silo) =>
            silo.TimedLines.First(l => l.Line.Contains("was declared dead by its cluster", StringComparison.Ordinal)).At;

        private void StartSilo(int silo)
        {
            var development = silo == SelfRestartingSilo;
            var process = network.Start(silo, ["dotnet", RepositoryPaths.Program("src", "Iris.Silo")], new Dictionary<string, string>
            {
                ["DOTNET_ENVIRONMENT"] = development ? "Development" : "Production",
                ["Logging__Console__DisableColors"] = "true",
                ["Logging__Console__FormatterOptions__SingleLine"] = "true",
                ["Logging__Console__FormatterOptions__TimestampFormat"] = "HH:mm:ss.fff ",
                ["Logging__LogLevel__Orleans.Runtime.MembershipService"] = "Information",
                ["Logging__LogLevel__Iris.Placement"] = "Debug",
                ["Logging__LogLevel__Iris.Overlay.Records"] = "Debug",
                ["Iris__Network__Key"] = _key,
                ["Iris__Network__Discovery__Scope"] = "Lan",
                ["Iris__Network__Discovery__Interfaces__0"] = SwitchedNetwork.Interface,
                ["Iris__Overlay__ListenAddress"] = network.Address(silo),
                ["Iris__Silo__EchoCluster"] = "echo",

                // Orleans declares a silo dead no sooner than 4 × ProbeTimeout × NumMissedProbesLimit after its last
                // message: 60 s by default, 24 s here, so that the majority declares the minority within the hold.
                ["Iris__Silo__Membership__ProbeTimeout"] = "00:00:02",
            });
            _silos[silo].Add(process);
        }

        private ChildProcess StartClient(string name, int silo, string[] arguments)
        {
            var process = network.Start(silo, ["dotnet", RepositoryPaths.Program("test", "Iris.Member.TestHost"), .. arguments], new Dictionary<string, string>
            {
                ["DOTNET_ENVIRONMENT"] = "Production",
                ["Logging__Console__DisableColors"] = "true",
                ["Logging__Console__FormatterOptions__SingleLine"] = "true",
                ["Logging__Console__FormatterOptions__TimestampFormat"] = "HH:mm:ss.fff ",
                ["Iris__Client__NetworkKey"] = _key,
                ["Iris__Client__Gateways__0"] = $"{network.Address(silo)}:30000",
            });
            _clients.Add((name, process));
            return process;
        }

        /// <summary>When silo <paramref name="silo"/>'s process started a new silo itself after being declared dead.</summary>
        private DateTime? RestartedAt(int silo) =>
            Current(silo).TimedLines.Where(l => l.Line.Contains("starting a new silo in this process", StringComparison.Ordinal)).Select(l => (DateTime?)l.At).FirstOrDefault();

        /// <summary>The active silos (endpoints) a silo's current Orleans silo last logged; null before it logged any.</summary>
        private HashSet<string>? ActiveView(int silo)
        {
            var since = RestartedAt(silo) ?? DateTime.MinValue;
            var line = Current(silo).TimedLines.LastOrDefault(l => l.At > since && l.Line.Contains(" active silos: ", StringComparison.Ordinal)).Line;
            return line is null ? null : [.. line[(line.IndexOf(" active silos: ", StringComparison.Ordinal) + " active silos: ".Length)..].Split(", ", StringSplitOptions.RemoveEmptyEntries)];
        }

        private static IEnumerable<(DateTime At, int Ok, int Failed, string Text)> Calls(ChildProcess client) =>
            client.TimedLines.Where(l => l.Line.StartsWith("CALLS ", StringComparison.Ordinal)).Select(l =>
            {
                var fields = l.Line.Split(' ');
                int Field(string name) => int.Parse(fields.First(f => f.StartsWith(name + "=", StringComparison.Ordinal))[(name.Length + 1)..], CultureInfo.InvariantCulture);
                return (l.At, Field("ok"), Field("failed"), l.Line["CALLS ".Length..]);
            });

        /// <summary>The requests of the seconds that began at or after <paramref name="from"/> and ended by
        /// <paramref name="to"/> (each CALLS line counts the second before it was printed).</summary>
        private static Tally TallyOf(ChildProcess client, DateTime from, DateTime to)
        {
            var seconds = Calls(client).Where(c => c.At - TimeSpan.FromSeconds(1) >= from && c.At <= to).ToList();
            var errors = seconds.SelectMany(c => c.Text.Split(' ').Skip(2)).Select(e => e.Split('=')).GroupBy(e => e[0])
                .Select(g => $"{g.Key}={g.Sum(e => int.Parse(e[1], CultureInfo.InvariantCulture))}");
            return new Tally(seconds.Sum(c => c.Ok), seconds.Sum(c => c.Failed), string.Join(" ", errors));
        }

        /// <summary>How long after <paramref name="from"/> every second's requests succeeded, up to <paramref name="to"/>.</summary>
        private static string StableFrom(ChildProcess client, DateTime from, DateTime to)
        {
            var seconds = Calls(client).Where(c => c.At > from && c.At <= to).ToList();
            var lastBad = seconds.LastOrDefault(c => c.Failed > 0 || c.Ok == 0);
            return lastBad == default ? "0 s" : Since(from, lastBad.At);
        }

        /// <summary>The membership table as a client's gateway silo reads it (refreshed from the ring), or why it could
        /// not; fails the test when no answer comes within <paramref name="limit"/>.</summary>
        private static async Task<(List<string> Rows, string? Failure)> ReadTableAsync(ChildProcess client, TimeSpan limit)
        {
            var (rows, failure) = await TryReadTableAsync(client, limit);
            Assert.True(rows is not null, $"no answer to 'hosts' within {limit}:\n{Tail(client)}");
            return (rows, failure);
        }

        /// <summary>As <see cref="ReadTableAsync"/>, but no answer within <paramref name="limit"/> is not a failure:
        /// the rows are then null.</summary>
        private static async Task<(List<string>? Rows, string? Failure)> TryReadTableAsync(ChildProcess client, TimeSpan limit)
        {
            var before = client.Lines.Length;
            await client.SendAsync("hosts");
            var deadline = DateTime.UtcNow + limit;
            while (!client.Lines.Skip(before).Any(l => l.StartsWith("HOSTS ", StringComparison.Ordinal)))
            {
                if (DateTime.UtcNow > deadline)
                {
                    return (null, null);
                }

                await Task.Delay(100);
            }

            return TableAnswer(client, before);
        }

        private static (List<string> Rows, string? Failure) TableAnswer(ChildProcess client, int before)
        {
            var answer = client.Lines.Skip(before).ToList();
            var end = answer.First(l => l.StartsWith("HOSTS ", StringComparison.Ordinal));
            return ([.. answer.TakeWhile(l => l != end).Where(l => l.StartsWith("HOST ", StringComparison.Ordinal))], end.StartsWith("HOSTS FAILED", StringComparison.Ordinal) ? end : null);
        }

        /// <summary>
        /// Checks the table as the majority reads it. Every majority silo has one row, Active, and no minority silo
        /// among its suspecters: a minority that wrote to the table (a vote against a majority silo, the first step of
        /// declaring it dead) would have left its name there. The minority's rows of before the split are Dead, by
        /// votes of majority silos only; after the heal each minority endpoint has one Active row too.
        /// </summary>
        private void CheckTable(List<string> rows, bool healed)
        {
            var table = rows.Select(r => r.Split(' ')).Select(f => (Silo: f[1], Endpoint: f[1].Split('@')[0], Status: f[2], Suspecters: f[3] == "-" ? [] : f[3].Split(',').Select(s => s.Split('@')[0]).ToArray())).ToList();
            var described = string.Join(" | ", rows);
            var minorityEndpoints = Minority.Select(Endpoint).ToHashSet();
            foreach (var i in Majority)
            {
                var own = table.Where(r => r.Endpoint == Endpoint(i)).ToList();
                Assert.True(own.Count == 1 && own[0].Status == "Active", $"majority silo {i} is not one Active row in the table: {described}");
                Assert.True(!own[0].Suspecters.Any(minorityEndpoints.Contains), $"a minority silo voted against majority silo {i}: the minority changed the table. {described}");
            }

            foreach (var i in Minority)
            {
                var own = table.Where(r => r.Endpoint == Endpoint(i)).ToList();
                Assert.True(own.Count(r => r.Status == "Dead") == 1, $"minority silo {i}'s row of before the split is not Dead: {described}");
                var dead = own.Single(r => r.Status == "Dead");
                Assert.True(dead.Suspecters.Length >= 2 && dead.Suspecters.All(s => !minorityEndpoints.Contains(s)), $"minority silo {i} was not declared dead by majority votes: {described}");
                Assert.True(own.Count(r => r.Status == "Active") == (healed ? 1 : 0), $"minority silo {i} has {own.Count(r => r.Status == "Active")} Active rows ({(healed ? "after" : "before")} the heal): {described}");
            }

            Assert.True(table.Count(r => r.Status == "Active") == (healed ? Silos : Majority.Length), $"the table does not have {(healed ? Silos : Majority.Length)} active silos: {described}");
            Note($"table ({(healed ? "after the heal" : "during the split")}): {described}");
        }

        private async Task UntilAsync(Func<bool> condition, TimeSpan limit, string what)
        {
            var deadline = DateTime.UtcNow + limit;
            while (!condition())
            {
                if (DateTime.UtcNow > deadline)
                {
                    Assert.Fail($"{what} (waited {limit}). {Describe()}");
                }

                await Task.Delay(200);
            }
        }

        private string Describe() =>
            string.Join(" ", Enumerable.Range(0, Silos).Select(i => $"[silo {i}: runs {_silos[i].Count}, exited {Current(i).HasExited}, view {string.Join(",", ActiveView(i) ?? [])}]"))
            + $" Logs in {LogDirectory}.";

        private static string Tail(ChildProcess process) => string.Join(Environment.NewLine, process.Lines.TakeLast(30));

        private void Note(string line)
        {
            var stamped = $"{Since(_start),8} {line}";
            _report.AppendLine(stamped);
            output.WriteLine(stamped);
        }

        private static string Since(DateTime from) => Since(from, DateTime.UtcNow);

        private static string Since(DateTime from, DateTime to) => $"{(to - from).TotalSeconds:F1} s";

        private string LogDirectory { get; } = Path.Combine(Path.GetTempPath(), $"iris-partition-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Environment.ProcessId}");

        public async ValueTask DisposeAsync()
        {
            var everything = _silos.SelectMany((runs, i) => runs.Select((p, r) => ($"silo-{i}-run-{r + 1}", p))).Concat(_clients).ToList();
            foreach (var (_, process) in everything)
            {
                if (!process.HasExited)
                {
                    process.Kill();
                }
            }

            Directory.CreateDirectory(LogDirectory);
            await File.WriteAllTextAsync(Path.Combine(LogDirectory, "report.txt"), _report.ToString());
            foreach (var (name, process) in everything)
            {
                await File.WriteAllLinesAsync(Path.Combine(LogDirectory, name + ".log"), process.TimedLines.Select(l => $"{l.At:HH:mm:ss.fff} {l.Line}"));
                await process.DisposeAsync();
            }

            output.WriteLine($"logs: {LogDirectory}");
        }
    }

    private sealed record Tally(int Ok, int Failed, string Errors)
    {
        public override string ToString() => $"{Ok} ok, {Failed} failed{(Errors.Length > 0 ? $" ({Errors})" : string.Empty)}";
    }
}
