using System.Collections.Concurrent;
using System.Diagnostics;
using Iris.Tests.Support;

namespace Iris.Tests.Patterns;

/// <summary>
/// The spans of the <c>Iris</c> activity source, between two silos with Orleans' activity propagation on: a request's
/// span on the caller and its handling on the member's silo are one trace, joined through Orleans' spans; a broadcast's
/// delivery on another silo is a child of its send, carried with the message; a tunnel's acceptance is in its opener's
/// trace; and no span stays current after the call that made it returns, nor is a later broadcast's hand-over parented
/// under an earlier sender's span.
/// </summary>
public sealed class TracingTests : IClassFixture<TracingTests.TracedCluster>, IDisposable
{
    private const string TestSource = "Iris.Tests.Tracing";

    private static readonly ActivitySource Application = new(TestSource);

    private readonly IrisClusterFixture cluster;
    private readonly ConcurrentQueue<Activity> _stopped = new();
    private readonly ActivityListener _listener;

    public TracingTests(TracedCluster cluster)
    {
        this.cluster = cluster;
        _listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name is "Iris" or TestSource || source.Name.StartsWith("Microsoft.Orleans", StringComparison.Ordinal),
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = _stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(_listener);
    }

    public void Dispose() => _listener.Dispose();

    /// <summary>Two silos with Orleans' activity propagation on, as a host that traces turns it on.</summary>
    public sealed class TracedCluster : IrisClusterFixture
    {
        protected override Task<Microsoft.Extensions.Hosting.IHost> StartSiloAsync(string key, int discoveryPort, Microsoft.Extensions.Logging.ILoggerProvider log) =>
            InProcessSilo.StartAsync(key, discoveryPort, echoCluster: "fixture-echo", silo: silo => silo.AddActivityPropagation(), log: log);
    }

    private sealed class Member : IClusterHandler
    {
        public TaskCompletionSource Broadcast { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken) => Task.FromResult(request);

        public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken)
        {
            Broadcast.TrySetResult();
            return Task.CompletedTask;
        }

        public async Task HandleTunnelAsync(ITunnel tunnel, CancellationToken cancellationToken)
        {
            await foreach (var message in tunnel.ReadAllAsync(cancellationToken))
            {
                await tunnel.SendAsync(message, cancellationToken);
            }
        }
    }

    private Activity Span(string name) =>
        _stopped.SingleOrDefault(a => a.Source.Name == "Iris" && a.DisplayName == name)
        ?? throw new Xunit.Sdk.XunitException($"no span '{name}'; Iris spans: {string.Join(", ", _stopped.Where(a => a.Source.Name == "Iris").Select(a => a.DisplayName))}");

    /// <summary>Whether <paramref name="ancestor"/> is <paramref name="span"/>'s parent, or its parent's, and so on,
    /// through the spans recorded (Orleans' own among them).</summary>
    private bool Descends(Activity span, Activity ancestor)
    {
        var bySpan = _stopped.GroupBy(a => a.SpanId).ToDictionary(g => g.Key, g => g.First());
        for (var parent = span.ParentSpanId; parent != default; parent = bySpan.TryGetValue(parent, out var next) ? next.ParentSpanId : default)
        {
            if (parent == ancestor.SpanId)
            {
                return true;
            }
        }

        return false;
    }

    private string Chain(Activity span)
    {
        var bySpan = _stopped.GroupBy(a => a.SpanId).ToDictionary(g => g.Key, g => g.First());
        var names = new List<string> { span.DisplayName };
        for (var parent = span.ParentSpanId; parent != default && bySpan.TryGetValue(parent, out var next); parent = next.ParentSpanId)
        {
            names.Add($"{next.Source.Name}:{next.DisplayName}");
        }

        return string.Join(" <- ", names);
    }

    [Fact]
    public async Task A_request_handled_on_another_silo_is_one_trace_with_the_handling_under_the_request()
    {
        var name = $"traced-request-{Guid.NewGuid():N}";
        await using var member = await cluster.IrisB.RegisterAsync(name, new Member());
        Assert.Equal([1, 2], await cluster.IrisA.RequestAsync(name, [1, 2], TimeSpan.FromSeconds(10)));

        await Eventually.HoldsAsync(() => _stopped.Any(a => a.DisplayName == $"handle {name}"), "the handling span ended");
        var request = Span($"request {name}");
        var handle = Span($"handle {name}");
        Assert.Equal(ActivityKind.Client, request.Kind);
        Assert.Equal(ActivityKind.Server, handle.Kind);
        Assert.Equal(request.TraceId, handle.TraceId);
        Assert.True(Descends(handle, request), Chain(handle));
        Assert.Equal(name, request.GetTagItem("messaging.destination.name"));
        Assert.Equal("iris", handle.GetTagItem("messaging.system"));
    }

    [Fact]
    public async Task A_broadcast_delivered_on_another_silo_is_a_child_of_its_send()
    {
        var name = $"traced-broadcast-{Guid.NewGuid():N}";
        var handler = new Member();
        await using var member = await cluster.IrisB.RegisterAsync(name, handler);
        await cluster.IrisA.BroadcastAsync(name, [3]);
        await handler.Broadcast.Task.WaitAsync(TimeSpan.FromSeconds(30));

        await Eventually.HoldsAsync(() => _stopped.Any(a => a.DisplayName == $"deliver {name}") && _stopped.Any(a => a.DisplayName == $"broadcast {name}"), "both spans ended");
        var send = Span($"broadcast {name}");
        var deliver = Span($"deliver {name}");
        Assert.Equal(ActivityKind.Producer, send.Kind);
        Assert.Equal(ActivityKind.Consumer, deliver.Kind);
        Assert.Equal(send.TraceId, deliver.TraceId);
        Assert.Equal(send.SpanId, deliver.ParentSpanId);
    }

    [Fact]
    public async Task A_tunnel_accepted_on_another_silo_is_in_its_openers_trace()
    {
        var name = $"traced-tunnel-{Guid.NewGuid():N}";
        await using var member = await cluster.IrisB.RegisterAsync(name, new Member());
        await using (var tunnel = await cluster.IrisA.OpenTunnelAsync(name, TimeSpan.FromSeconds(10)))
        {
            await tunnel.SendAsync(new byte[] { 9 });
            Assert.Equal([9], await tunnel.ReceiveAsync());
        }

        await Eventually.HoldsAsync(() => _stopped.Any(a => a.DisplayName == $"tunnel accept {name}"), "the acceptance span ended");
        var open = Span($"tunnel open {name}");
        var accept = Span($"tunnel accept {name}");
        Assert.Equal(open.TraceId, accept.TraceId);
        Assert.True(Descends(accept, open), Chain(accept));
    }

    [Fact]
    public async Task The_callers_span_is_current_again_after_each_call_and_hand_overs_run_under_no_senders_span()
    {
        var name = $"traced-current-{Guid.NewGuid():N}";
        var handler = new Member();
        await using var member = await cluster.IrisB.RegisterAsync(name, handler);

        using (var first = Application.StartActivity("first sender"))
        {
            Assert.NotNull(first);
            await cluster.IrisA.BroadcastAsync(name, [1]);
            Assert.Same(first, Activity.Current);
            await cluster.IrisA.RequestAsync(name, [2], TimeSpan.FromSeconds(10));
            Assert.Same(first, Activity.Current);
            await using (var tunnel = await cluster.IrisA.OpenTunnelAsync(name, TimeSpan.FromSeconds(10)))
            {
                Assert.Same(first, Activity.Current);
                await tunnel.SendAsync(new byte[] { 3 });
                Assert.Equal([3], await tunnel.ReceiveAsync());
            }

            Assert.Same(first, Activity.Current);
        }

        Assert.Null(Activity.Current);
        using (var second = Application.StartActivity("second sender"))
        {
            for (var i = 0; i < 20; i++)
            {
                await cluster.IrisA.BroadcastAsync(name, [4]);
            }
        }

        // Orleans' spans of the hand-overs (calls to the rendezvous) and of the tunnel's frames: none under a sender's
        // span, which ended long before the work did or never covered it.
        await Eventually.HoldsAsync(() => _stopped.Count(a => a.DisplayName == $"deliver {name}") >= 21, "every delivery span ended");
        var senders = _stopped.Where(a => a.Source.Name == TestSource).ToArray();
        Assert.Equal(2, senders.Length);
        var handOvers = _stopped.Where(a => a.Source.Name.StartsWith("Microsoft.Orleans", StringComparison.Ordinal) && a.DisplayName.Contains("Disseminate", StringComparison.Ordinal)).ToArray();
        Assert.NotEmpty(handOvers);
        foreach (var handOver in handOvers)
        {
            Assert.False(senders.Any(sender => Descends(handOver, sender)), Chain(handOver));
        }

        var frames = _stopped.Where(a => a.Source.Name.StartsWith("Microsoft.Orleans", StringComparison.Ordinal) && a.DisplayName.Contains("TunnelData", StringComparison.Ordinal)).ToArray();
        Assert.NotEmpty(frames);
        Assert.All(frames, frame => Assert.False(senders.Any(sender => Descends(frame, sender)), Chain(frame)));
    }
}
