using System.Net;
using BenchmarkDotNet.Attributes;
using Iris.Balancing;
using Iris.Protocol;

namespace Iris.Benchmarks.Micro;

/// <summary>
/// Choosing the member process for a request (<see cref="MemberDirectory"/>) in the steady state: every member known
/// to this process with requests in flight and a reported capacity, none full or gone. The baseline is a uniform
/// random pick of the same array with the same <see cref="Random"/>: the least a choice can cost.
/// </summary>
[MemoryDiagnoser]
public class MemberChoiceBenchmarks
{
    private const string Cluster = "echo";

    private MemberDirectory _directory = null!;
    private MemberEndpoint[] _members = null!;
    private Random _random = null!;

    [Params(4, 64)]
    public int Members { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _members = new MemberEndpoint[Members];
        for (var i = 0; i < Members; i++)
        {
            var silo = SiloAddress.New(new IPEndPoint(IPAddress.Parse("10.0.0.1"), 11111 + i), 1);
            _members[i] = new MemberEndpoint(silo, Capacity: 8 + (i % 3));
        }

        _random = new Random(1);
        _directory = new MemberDirectory(_ => Task.FromResult(_members), TimeProvider.System, new Random(1));
        foreach (var member in _members)
        {
            // Leaves one request in flight to each member, and its reported capacity, as under load.
            _ = _directory.Track(member.Id);
            _directory.Reported(member.Id, 8);
        }

        // One member full for another cluster: the table of full members is not empty, so NotFull looks each up.
        _directory.Full(_members[0].Id, "other", TimeSpan.FromHours(1));
    }

    [Benchmark(Baseline = true, Description = "uniform random pick (baseline)")]
    public string UniformPick() => _members[_random.Next(_members.Length)].Id;

    [Benchmark(Description = "Choose")]
    public string Choose() => _directory.Choose(_members).Id;

    [Benchmark(Description = "NotFull (none full here)")]
    public int NotFull() => _directory.NotFull(Cluster, _members).Count;

    [Benchmark(Description = "NotGone (none gone)")]
    public int NotGone() => _directory.NotGone(_members).Count;

    /// <summary>What <c>RequestSender</c> does per request before calling the member: the rendezvous key, members not
    /// full, not gone, the choice, and the turn to ask it.</summary>
    [Benchmark(Description = "NextKey+NotFull+NotGone+Choose+TryAsk")]
    public bool RequestChoice()
    {
        _ = _directory.NextKey(Audience.Cluster(Cluster));
        var member = _directory.Choose(_directory.NotGone(_directory.NotFull(Cluster, _members)));
        return _directory.TryAsk(member.Id, Cluster);
    }
}
