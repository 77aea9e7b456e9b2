using Iris.Overlay.Timing;

namespace Iris.Overlay.Transport;

/// <summary>Settings of an <see cref="InMemoryNetwork"/>.</summary>
internal sealed record InMemoryNetworkOptions
{
    /// <summary>Seed for latencies and losses: the same seed and the same sends give the same deliveries.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Smallest one-way latency between two addresses, in whole milliseconds.</summary>
    public int MinLatencyMilliseconds { get; init; } = 1;

    /// <summary>Largest one-way latency between two addresses, in whole milliseconds.</summary>
    public int MaxLatencyMilliseconds { get; init; } = 20;

    /// <summary>Probability that any one message is lost.</summary>
    public double LossProbability { get; init; }

    /// <summary>Whether every message goes through <see cref="MessageCodec"/> on its way, as it would on a socket.</summary>
    public bool EncodeMessages { get; init; } = true;

    /// <summary>Largest encoded message carried, like the TCP transport's frame limit; larger ones are dropped.
    /// Checked only when <see cref="EncodeMessages"/> is on. Default 16 MiB.</summary>
    public int MaxMessageSize { get; init; } = 16 * 1024 * 1024;
}

/// <summary>
/// A simulated network in one process. Each ordered pair of addresses has a fixed latency drawn from the seed, so
/// messages between two nodes arrive in the order they were sent; messages can be lost with a set probability;
/// addresses can be crashed (everything to and from them is dropped) and split into partitions. Deliveries are
/// driven by one deadline on a <see cref="TimerQueue"/> over the injected <see cref="TimeProvider"/>: with a <c>FakeTimeProvider</c> the whole network
/// runs deterministically, as fast as the host can process messages.
/// </summary>
internal sealed class InMemoryNetwork : IDisposable
{
    private readonly Lock _lock = new();
    private readonly TimerQueue _timers;
    private readonly InMemoryNetworkOptions _options;
    private readonly Random _random;
    private readonly Dictionary<NodeAddress, Endpoint> _endpoints = [];
    private readonly PriorityQueue<Envelope, (long Due, long Sequence)> _queue = new();
    private readonly List<Envelope> _batch = [];
    private readonly TimerQueue.Entry _wake;
    private long _sequence;
    private int _nextEndpointId;
    private long _armedDue = long.MaxValue;
    private double _lossProbability;

    public InMemoryNetwork(TimerQueue timers, InMemoryNetworkOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(timers);
        _timers = timers;
        _options = options ?? new InMemoryNetworkOptions();
        if (_options.MinLatencyMilliseconds < 0 || _options.MaxLatencyMilliseconds < _options.MinLatencyMilliseconds)
        {
            throw new ArgumentException($"Latency range {_options.MinLatencyMilliseconds}..{_options.MaxLatencyMilliseconds} ms is not valid.", nameof(options));
        }

        _lossProbability = _options.LossProbability;
        _random = new Random(_options.Seed);
        _wake = timers.Create(OnTimer);
    }

    /// <summary>Messages handed to a receiver so far.</summary>
    public long Delivered { get; private set; }

    /// <summary>Messages lost, sent to crashed or unknown addresses, or across a partition.</summary>
    public long Dropped { get; private set; }

    /// <summary>Probability that a message is lost; can change while the network runs.</summary>
    public double LossProbability
    {
        get { lock (_lock) { return _lossProbability; } }
        set { lock (_lock) { _lossProbability = value; } }
    }

    /// <summary>Adds an address to the network and returns its transport.</summary>
    public IOverlayTransport Attach(NodeAddress address)
    {
        lock (_lock)
        {
            if (_endpoints.TryGetValue(address, out var existing) && !existing.Crashed)
            {
                throw new InvalidOperationException($"Address {address} is already attached to the in-memory network.");
            }

            var endpoint = new Endpoint(this, address, _nextEndpointId++);
            _endpoints[address] = endpoint;
            return endpoint;
        }
    }

    /// <summary>Crashes an address: it neither sends nor receives from now on, like a killed process.</summary>
    public void Crash(NodeAddress address)
    {
        lock (_lock)
        {
            if (_endpoints.TryGetValue(address, out var endpoint))
            {
                endpoint.Crashed = true;
            }
        }
    }

    /// <summary>Splits the network: addresses in each group only reach their own group. Addresses not listed form
    /// one more group together.</summary>
    public void Partition(params IEnumerable<NodeAddress>[] groups)
    {
        lock (_lock)
        {
            foreach (var endpoint in _endpoints.Values)
            {
                endpoint.Group = 0;
            }

            for (var i = 0; i < groups.Length; i++)
            {
                foreach (var address in groups[i])
                {
                    if (_endpoints.TryGetValue(address, out var endpoint))
                    {
                        endpoint.Group = i + 1;
                    }
                }
            }
        }
    }

    /// <summary>Ends every partition.</summary>
    public void Heal() => Partition();

    public void Dispose() => _wake.Cancel();

    private long NowMilliseconds() => _timers.NowMs;

    private void Send(Endpoint from, NodeAddress destination, OverlayMessage message)
    {
        if (_options.EncodeMessages)
        {
            // Encoding at send time captures the message as it was, exactly as a socket would.
            if (MessageCodec.Refusal(message, _options.MaxMessageSize) is not null)
            {
                lock (_lock)
                {
                    Dropped++;
                }

                return;
            }

            message = MessageCodec.Read(MessageCodec.Encode(message));
        }

        lock (_lock)
        {
            if (from.Crashed || !_endpoints.TryGetValue(destination, out var to) || to.Crashed || to.Group != from.Group
                || (_lossProbability > 0 && _random.NextDouble() < _lossProbability))
            {
                Dropped++;
                return;
            }

            var due = NowMilliseconds() + Latency(from.Id, to.Id);
            _queue.Enqueue(new Envelope(from, to, message), (due, _sequence++));
            if (due < _armedDue)
            {
                Arm(due);
            }
        }
    }

    private int Latency(int from, int to)
    {
        var span = _options.MaxLatencyMilliseconds - _options.MinLatencyMilliseconds + 1;
        var hash = Mix((uint)_options.Seed, (uint)from, (uint)to);
        return _options.MinLatencyMilliseconds + (int)(hash % (uint)span);
    }

    private static uint Mix(uint seed, uint a, uint b)
    {
        // FNV-1a over the three words, then a final avalanche: stable across processes, unlike HashCode.
        var h = 2166136261u;
        foreach (var word in (ReadOnlySpan<uint>)[seed, a, b])
        {
            for (var i = 0; i < 4; i++)
            {
                h = (h ^ ((word >> (8 * i)) & 0xff)) * 16777619u;
            }
        }

        h ^= h >> 16;
        h *= 0x85ebca6b;
        h ^= h >> 13;
        return h;
    }

    private void Arm(long due)
    {
        _armedDue = due;
        _wake.ScheduleAt(due);
    }

    private void OnTimer()
    {
        while (true)
        {
            lock (_lock)
            {
                _armedDue = long.MaxValue;
                var now = NowMilliseconds();
                while (_queue.TryPeek(out _, out var priority) && priority.Due <= now)
                {
                    var envelope = _queue.Dequeue();
                    if (envelope.To.Crashed || envelope.From.Group != envelope.To.Group)
                    {
                        Dropped++;
                        continue;
                    }

                    _batch.Add(envelope);
                }

                if (_batch.Count == 0)
                {
                    if (_queue.TryPeek(out _, out var next))
                    {
                        Arm(next.Due);
                    }

                    return;
                }

                Delivered += _batch.Count;
            }

            // Deliver outside the lock: receivers send, and sends take the lock.
            foreach (var envelope in _batch)
            {
                envelope.To.Deliver(envelope.Message);
            }

            _batch.Clear();
        }
    }

    private readonly record struct Envelope(Endpoint From, Endpoint To, OverlayMessage Message);

    private sealed class Endpoint(InMemoryNetwork network, NodeAddress address, int id) : IOverlayTransport
    {
        private IOverlayReceiver? _receiver;

        public int Id { get; } = id;

        public bool Crashed { get; set; }

        public int Group { get; set; }

        public NodeAddress LocalAddress { get; } = address;

        public int MaxPayload => Math.Min(MessageCodec.MaxPayload, network._options.MaxMessageSize - MessageCodec.MaxEnvelope);

        public void Send(NodeAddress destination, OverlayMessage message) => network.Send(this, destination, message);

        public void SetReceiver(IOverlayReceiver receiver) => _receiver = receiver;

        public void Deliver(OverlayMessage message)
        {
            if (!Crashed)
            {
                _receiver?.Receive(message);
            }
        }
    }
}
