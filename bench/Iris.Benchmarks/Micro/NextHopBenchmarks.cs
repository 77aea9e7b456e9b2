using BenchmarkDotNet.Attributes;
using Iris.Overlay;
using Iris.Overlay.Pastry;
using Iris.Overlay.Timing;
using Iris.Overlay.Transport;
using Microsoft.Extensions.Time.Testing;

namespace Iris.Benchmarks.Micro;

/// <summary>
/// Pastry's next-hop decision (<see cref="PastryNode.NextHopFor"/>: leaf set, routing table, and the rare scan when
/// the table has a hole) at one node of a settled ring, for keys spread over the ring. The ring is built on the
/// in-memory network under a fake clock. The baseline is what full-membership consistent hashing does instead: a
/// binary search for the key's successor in the sorted keys of every node.
/// </summary>
[MemoryDiagnoser]
public class NextHopBenchmarks
{
    private const int Lookups = 1024;

    private readonly NodeKey[] _keys = new NodeKey[Lookups];
    private FakeTimeProvider _time = null!;
    private TimerQueue _timers = null!;
    private List<PastryNode> _nodes = null!;
    private PastryNode _node = null!;
    private UInt128[] _sorted = null!;
    private int _next;

    [Params(64)]
    public int Nodes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(7);
        _time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        _timers = new TimerQueue(_time);
        var network = new InMemoryNetwork(_timers, new InMemoryNetworkOptions { Seed = 7, EncodeMessages = false });
        var options = new PastryOptions();
        _nodes = [];
        for (var i = 0; i < Nodes; i++)
        {
            var node = new PastryNode(NodeKey.Random(random), network.Attach(new NodeAddress($"mem://{i}")), _timers, options, new Random(i));
            if (i == 0)
            {
                node.Start();
            }
            else
            {
                node.Join(_nodes[random.Next(_nodes.Count)].Self.Address);
            }

            _nodes.Add(node);
            Run(TimeSpan.FromMilliseconds(200));
        }

        Run(TimeSpan.FromSeconds(10));
        if (_nodes.Any(n => !n.IsReady))
        {
            throw new InvalidOperationException("The ring did not settle.");
        }

        _node = _nodes[0];
        _sorted = [.. _nodes.Select(n => n.Self.Key.Value).Order()];
        for (var i = 0; i < _keys.Length; i++)
        {
            _keys[i] = NodeKey.Random(random);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var node in _nodes)
        {
            node.Dispose();
        }

        _timers.Dispose();
    }

    [Benchmark(Baseline = true, Description = "successor by binary search (baseline)")]
    public int Successor()
    {
        var index = Array.BinarySearch(_sorted, _keys[_next++ & (Lookups - 1)].Value);
        return index >= 0 ? index : ~index % _sorted.Length;
    }

    [Benchmark(Description = "PastryNode.NextHopFor")]
    public bool NextHop() => _node.NextHopFor(_keys[_next++ & (Lookups - 1)]) is not null;

    private void Run(TimeSpan duration)
    {
        var end = _time.GetUtcNow() + duration;
        for (var now = _time.GetUtcNow() + TimeSpan.FromMilliseconds(1); now <= end; now += TimeSpan.FromMilliseconds(1))
        {
            _time.SetUtcNow(now);
        }
    }
}
