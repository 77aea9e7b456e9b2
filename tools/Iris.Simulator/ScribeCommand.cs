using System.Diagnostics;
using Iris.Overlay;
using Iris.Overlay.Pastry;
using Iris.Overlay.Scribe;

namespace Iris.Simulator;

/// <summary>The <c>scribe</c> mode: groups on a ring, multicast and anycast before and after a mass failure.</summary>
internal static class ScribeCommand
{
    private const int ShareGroups = 5;
    private const int AnycastsPerShareGroup = 20_000;

    internal static ScribeResult Run(int nodes, int groups, int members, int messages, double fail, int seed, int splits, TextWriter progress)
    {
        var wall = Stopwatch.StartNew();
        using var ring = new PastrySimulation(new PastrySimulationOptions { Seed = seed, EncodeMessages = false });
        progress.WriteLine($"Joining {nodes} nodes (seed {seed})...");
        ring.AddNodes(nodes, TimeSpan.FromMilliseconds(2));
        if (ring.Stabilise(TimeSpan.FromSeconds(120)) is null)
        {
            progress.WriteLine($"Ring not stable after 120 s of simulated time ({ring.WrongLeafSets()} wrong leaf sets); going on.");
        }

        using var scribe = new ScribeSimulation(ring, new ScribeOptions { Splits = splits });
        scribe.AttachAll();
        var random = new Random(seed + 1);
        var live = ring.ReadyNodes.ToList();
        var groupKeys = new NodeKey[groups][];
        members = Math.Min(members, live.Count);
        for (var g = 0; g < groups; g++)
        {
            groupKeys[g] = GroupNames.Keys($"group-{g}", splits);
            foreach (var node in Pick(live, members, random))
            {
                scribe.Subscribe(node, $"g{g}/m{node.Self.Address}", random.Next(1, 11), groupKeys[g]);
            }
        }

        var allKeys = groupKeys.SelectMany(k => k).ToList();
        progress.WriteLine($"{groups} groups × {splits} splits, {members} members each; building trees...");
        var built = ring.RunUntil(() => allKeys.All(scribe.TreeIsWhole), TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(500));
        progress.WriteLine(built is { } b ? $"Trees whole after {b.TotalSeconds:F1} s of simulated time." : "Trees not whole after 60 s of simulated time; going on.");
        var rotation = new int[groups];
        var before = Phase("before", scribe, groupKeys, rotation, messages, random, progress);

        var failed = scribe.Fail(fail);
        progress.WriteLine($"Crashed {failed.Count} nodes; waiting for the ring and the trees to repair...");
        var repaired = ring.RunUntil(() => ring.WrongLeafSets() == 0 && allKeys.All(scribe.TreeIsWhole), TimeSpan.FromSeconds(120), TimeSpan.FromMilliseconds(500));
        progress.WriteLine(repaired is { } r ? $"Repaired after {r.TotalSeconds:F1} s of simulated time." : "Not repaired after 120 s of simulated time; going on.");
        var after = Phase("after", scribe, groupKeys, rotation, messages, random, progress);
        return new ScribeResult(nodes, groups, members, messages, fail, seed, splits, before, after, built?.TotalSeconds, repaired?.TotalSeconds, wall.Elapsed.TotalSeconds);
    }

    private static ScribePhase Phase(string name, ScribeSimulation scribe, NodeKey[][] groupKeys, int[] rotation, int messages, Random random, TextWriter progress)
    {
        var ring = scribe.Ring;
        var live = ring.ReadyNodes.ToList();
        var recorder = scribe.Recorder;
        recorder.Clear();
        var expected = new Dictionary<ScribeMessageId, HashSet<string>>();
        var anycasts = new List<ScribeMessageId>();
        var rootLoad = new Dictionary<NodeKey, int>();
        for (var i = 0; i < messages; i++)
        {
            var origin = scribe.ScribeOf(live[random.Next(live.Count)]);
            var g = random.Next(groupKeys.Length);
            var key = groupKeys[g][rotation[g]++ % groupKeys[g].Length];
            var root = ring.TrueRoot(key).Self.Key;
            rootLoad[root] = rootLoad.GetValueOrDefault(root) + 1;
            if (i % 2 == 0)
            {
                expected[origin.Multicast(key, default)] = [.. scribe.LiveMembers(key).Keys];
            }
            else
            {
                anycasts.Add(origin.Anycast(key, default));
            }
        }

        ring.Run(TimeSpan.FromSeconds(5));
        long expectedCopies = 0, deliveredCopies = 0;
        foreach (var (id, members) in expected)
        {
            expectedCopies += members.Count;
            if (recorder.Multicasts.TryGetValue(id, out var got))
            {
                deliveredCopies += got.Count(members.Contains);
            }
        }

        var duplicates = recorder.Duplicates;
        var anycastDelivered = anycasts.Count == 0 ? 1 : (double)anycasts.Count(recorder.Anycasts.ContainsKey) / anycasts.Count;

        // Shares: many anycasts into a few groups, compared with the capacities of their live members.
        recorder.Clear();
        var tvds = new List<double>();
        var shareIds = new List<(int Group, List<ScribeMessageId> Ids)>();
        for (var g = 0; g < Math.Min(ShareGroups, groupKeys.Length); g++)
        {
            var ids = new List<ScribeMessageId>(AnycastsPerShareGroup);
            for (var i = 0; i < AnycastsPerShareGroup; i++)
            {
                var origin = scribe.ScribeOf(live[random.Next(live.Count)]);
                ids.Add(origin.Anycast(groupKeys[g][rotation[g]++ % groupKeys[g].Length], default));
            }

            shareIds.Add((g, ids));
        }

        ring.Run(TimeSpan.FromSeconds(5));
        foreach (var (g, ids) in shareIds)
        {
            var capacities = scribe.LiveMembers(groupKeys[g][0]);
            var total = capacities.Values.Sum();
            var counts = ids.Where(recorder.Anycasts.ContainsKey).GroupBy(id => recorder.Anycasts[id]).ToDictionary(x => x.Key, x => x.Count());
            var arrived = counts.Values.Sum();
            if (arrived == 0 || total == 0)
            {
                continue;
            }

            var names = capacities.Keys.Union(counts.Keys);
            tvds.Add(0.5 * names.Sum(m => Math.Abs(((double)counts.GetValueOrDefault(m) / arrived) - (capacities.GetValueOrDefault(m) / total))));
        }

        var depths = new List<int>();
        var maxChildren = 0;
        foreach (var node in scribe.LiveScribes)
        {
            foreach (var key in node.Groups())
            {
                if (node.GetGroup(key) is { } group)
                {
                    maxChildren = Math.Max(maxChildren, group.Children.Count);
                    if (group.Members.Count > 0 && group.Path.Count > 0)
                    {
                        depths.Add(group.Path.Count - 1);
                    }
                }
            }
        }

        var phase = new ScribePhase(
            Math.Round(expectedCopies == 0 ? 1 : (double)deliveredCopies / expectedCopies, 6),
            duplicates,
            Math.Round(anycastDelivered, 6),
            Math.Round(tvds.Count == 0 ? 0 : tvds.Average(), 6),
            Math.Round(depths.Count == 0 ? 0 : depths.Average(), 4),
            maxChildren,
            Math.Round(rootLoad.Count == 0 ? 0 : rootLoad.Values.Max() / rootLoad.Values.Average(), 4));
        progress.WriteLine($"{name}: {phase}");
        return phase;
    }

    private static IEnumerable<PastryNode> Pick(List<PastryNode> nodes, int count, Random random)
    {
        var chosen = new HashSet<int>();
        while (chosen.Count < count)
        {
            chosen.Add(random.Next(nodes.Count));
        }

        return chosen.Order().Select(i => nodes[i]);
    }
}
