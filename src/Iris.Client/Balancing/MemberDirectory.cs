using System.Buffers;
using System.Collections.Concurrent;
using Iris.Calls;
using Iris.Protocol;

namespace Iris.Balancing;

/// <summary>
/// This process's view of where each cluster's members are: asked of the cluster's rendezvous grains, kept for a short
/// while (<see cref="CacheTime"/>), and dropped at once when a call shows it stale or this process registers or
/// unregisters members itself. One question per split is in flight at a time: the requests that find the list old
/// while it is being asked for wait for that answer. Chooses the member process for a request in proportion to its
/// capacity (the latest a member reported with a reply to this process, else what the rendezvous lists), discounted by
/// the requests this process already has in flight there; and remembers which member processes refused a request of
/// a cluster as overloaded, for as long as they said they would stay full (<see cref="Full"/>).
/// </summary>
internal sealed class MemberDirectory(Func<string, Task<MemberEndpoint[]>> ask, TimeProvider time, Random random)
{
    /// <summary>How long a member list is kept. A member that joins waits this long before its registration returns,
    /// and one that leaves goes on serving this long after it stopped being offered: neither costs a request.</summary>
    public static readonly TimeSpan CacheTime = TimeSpan.FromMilliseconds(500);

    /// <summary>How long a lookup that finds the list old waits for the rendezvous' answer before it takes the last list
    /// instead (<see cref="StaleLimit"/>).</summary>
    public static readonly TimeSpan SlowAnswer = TimeSpan.FromSeconds(1);

    /// <summary>How long a question to the rendezvous is waited for; after that the next lookup asks anew.</summary>
    public static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(5);

    /// <summary>How old a list may be and still serve while the rendezvous does not answer: the lease of a member
    /// process on a silo, after which the rendezvous itself would have dropped a member that stopped renewing.</summary>
    public static readonly TimeSpan StaleLimit = TimeSpan.FromSeconds(30);

    /// <summary>How long a member process that Orleans reported gone (an Orleans client no silo can reach: it left, or
    /// its gateway died) is passed over by this process's requests: the rendezvous' lease of a client member, after
    /// which the rendezvous itself drops it unless it renewed from another gateway.</summary>
    public static readonly TimeSpan GoneTime = TimeSpan.FromSeconds(15);

    /// <summary>How long the capacity a member reported with a reply stands for it; after that the rendezvous' list,
    /// renewed by the member meanwhile, is the fresher word.</summary>
    public static readonly TimeSpan ReportedTime = TimeSpan.FromSeconds(5);

    /// <summary>How long the load kept for a member process (requests in flight, capacity reported) outlives its last
    /// request from here.</summary>
    private static readonly TimeSpan IdleTime = TimeSpan.FromMinutes(1);

    /// <summary>The most members whose weights <see cref="Choose"/> keeps on the stack (1 KiB).</summary>
    private const int MaxStackWeights = 128;

    private readonly ConcurrentDictionary<string, Kept> _cache = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Question> _asking = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Member, string Cluster), Fullness> _full = new();
    private readonly ConcurrentDictionary<string, MemberLoad> _loads = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _gone = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Audience, string[]> _keys = new();
    private int _rotation;
    private long _swept;

    /// <summary>Asks each split's rendezvous grain for its members.</summary>
    public MemberDirectory(IGrainFactory grains, TimeProvider time, Random random)
        : this(key => grains.GetGrain<IRendezvousGrain>(key).GetMembers(), time, random)
    {
    }

    /// <summary>The rendezvous key the next message of this process for <paramref name="audience"/> goes through:
    /// senders rotate over a name's splits, so no one silo carries a popular name alone.</summary>
    public string NextKey(Audience audience) =>
        KeysOf(audience)[(int)((uint)Interlocked.Increment(ref _rotation) % Audience.Splits)];

    /// <summary>The rendezvous keys of every split of <paramref name="audience"/> (kept: each is a hash of the name).</summary>
    public string[] KeysOf(Audience audience) => _keys.GetOrAdd(audience, static a => a.RendezvousKeys());

    /// <summary>
    /// The members listed under <paramref name="key"/>: kept ones, or asked of the rendezvous, once for all who need them
    /// meanwhile. While the rendezvous does not answer (its silo cut off, until Orleans declares it dead and places it
    /// anew), a lookup that finds the list old waits <see cref="SlowAnswer"/> at most, and lookups after that not at
    /// all: they take the last list, up to <see cref="StaleLimit"/> old. Requests then go on to the members that still
    /// answer, rather than all waiting, and failing, with the rendezvous.
    /// </summary>
    public ValueTask<MemberEndpoint[]> MembersAsync(string key)
    {
        if (_cache.TryGetValue(key, out var kept))
        {
            var age = time.GetElapsedTime(kept.Fetched);
            if (!kept.Forgotten && age < CacheTime)
            {
                return ValueTask.FromResult(kept.Members);
            }

            if (age < StaleLimit)
            {
                var question = Asking(key);
                if (question.Answer.IsCompleted)
                {
                    // A question that failed at once (the rendezvous' silo is known unreachable) leaves the kept list.
                    return question.Answer.IsCompletedSuccessfully
                        ? new ValueTask<MemberEndpoint[]>(question.Answer)
                        : new ValueTask<MemberEndpoint[]>(AnswerOrKeptAsync(question.Answer, kept.Members, TimeSpan.Zero));
                }

                var waited = time.GetElapsedTime(question.Asked);
                return waited >= SlowAnswer
                    ? ValueTask.FromResult(kept.Members)
                    : new ValueTask<MemberEndpoint[]>(AnswerOrKeptAsync(question.Answer, kept.Members, SlowAnswer - waited));
            }
        }

        return new ValueTask<MemberEndpoint[]>(Asking(key).Answer);
    }

    /// <summary>The answer, if it comes within <paramref name="wait"/>; else, or when the rendezvous could not be
    /// reached, the list kept before.</summary>
    private async Task<MemberEndpoint[]> AnswerOrKeptAsync(Task<MemberEndpoint[]> answer, MemberEndpoint[] kept, TimeSpan wait)
    {
        try
        {
            return await answer.WaitAsync(wait, time).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException || CallPolicy.Classify(e) != CallFailure.Answered)
        {
            return kept;
        }
    }

    /// <summary>The question in flight for <paramref name="key"/>, or a new one. Without this, every request that
    /// finds the list old asks on its own: at a few hundred requests a second, each expiry of a list sent a burst of
    /// questions to the rendezvous as long as the answer took (under overload, about as many as member calls).</summary>
    private Question Asking(string key)
    {
        while (true)
        {
            if (_asking.TryGetValue(key, out var pending))
            {
                return pending;
            }

            var answer = new TaskCompletionSource<MemberEndpoint[]>(TaskCreationOptions.RunContinuationsAsynchronously);
            var question = new Question(answer.Task, time.GetTimestamp());
            if (_asking.TryAdd(key, question))
            {
                _ = AskAsync(key, question, answer);
                return question;
            }
        }
    }

    private async Task AskAsync(string key, Question question, TaskCompletionSource<MemberEndpoint[]> answer)
    {
        try
        {
            // A call to a silo cut off by a partition waits for Orleans' response timeout (30 s by default); the
            // question is given up sooner, so that a later one reaches the rendezvous once Orleans has moved it.
            var pending = ask(key);
            MemberEndpoint[] members;
            try
            {
                members = await pending.WaitAsync(AskTimeout, time).ConfigureAwait(false);
            }
            catch (TimeoutException) when (!pending.IsCompleted)
            {
                CallPolicy.Observe(pending);
                throw;
            }

            _cache[key] = new Kept(members, time.GetTimestamp(), Forgotten: false);
            _asking.TryRemove(new KeyValuePair<string, Question>(key, question));
            answer.SetResult(members);
        }
        catch (Exception e)
        {
            // A failed question is not kept: the next lookup asks again.
            _asking.TryRemove(new KeyValuePair<string, Question>(key, question));
            answer.SetException(e is TimeoutException ? new TimeoutException($"The rendezvous {key} did not answer within {AskTimeout}.", e) : e);
        }
    }

    /// <summary>Marks the list kept for <paramref name="key"/> stale and drops the question in flight for it (which
    /// may have been answered before what made the list stale): the next lookup asks anew, and keeps the list only as
    /// the fallback while the rendezvous does not answer.</summary>
    public void Forget(string key)
    {
        if (_cache.TryGetValue(key, out var kept) && !kept.Forgotten)
        {
            _cache.TryUpdate(key, kept with { Forgotten = true }, kept);
        }

        _asking.TryRemove(key, out _);
    }

    /// <summary>Forgets every split of <paramref name="audience"/>.</summary>
    public void Forget(Audience audience)
    {
        foreach (var key in audience.RendezvousKeys())
        {
            Forget(key);
        }
    }

    /// <summary>Asks every split of <paramref name="audience"/> anew, waiting up to <paramref name="wait"/>: the
    /// requests that follow find the list fresh instead of each asking the rendezvous on its way (a request with a
    /// budget of a millisecond or two would spend it there).</summary>
    public async Task RefreshAsync(Audience audience, TimeSpan wait)
    {
        Forget(audience);
        var answers = KeysOf(audience).Select(key => (Task)MembersAsync(key).AsTask());
        await ((Task)Task.WhenAll(answers)).WaitAsync(wait, time).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    /// <summary>
    /// Picks a member at random, weighted by its capacity over the square of (1 + requests in flight to it from
    /// here): a member that answers slowly piles up requests in flight, and the square makes that count. With the
    /// capacity reported by each reply, two members of equal slots split a load in proportion to their speed.
    /// </summary>
    public MemberEndpoint Choose(IReadOnlyList<MemberEndpoint> members)
    {
        // The weights live on the stack up to 1 KiB, in a pooled array above: a choice allocates nothing.
        if (members.Count <= MaxStackWeights)
        {
            return members[Pick(members, stackalloc double[members.Count])];
        }

        var rented = ArrayPool<double>.Shared.Rent(members.Count);
        var index = Pick(members, rented.AsSpan(0, members.Count));
        ArrayPool<double>.Shared.Return(rented);
        return members[index];
    }

    /// <summary>The index <see cref="Choose"/> picks, with <paramref name="weights"/> (one per member) as scratch.</summary>
    private int Pick(IReadOnlyList<MemberEndpoint> members, Span<double> weights)
    {
        var now = time.GetTimestamp();
        var total = 0.0;
        for (var i = 0; i < members.Count; i++)
        {
            var capacity = members[i].Capacity;
            var inFlight = 1.0;
            if (_loads.TryGetValue(members[i].Id, out var load))
            {
                inFlight += Volatile.Read(ref load.InFlight);
                if (load.Reported >= 0 && time.GetElapsedTime(load.ReportedAt, now) < ReportedTime)
                {
                    capacity = load.Reported;
                }
            }

            weights[i] = capacity / (inFlight * inFlight);
            total += weights[i];
        }

        var pick = random.NextDouble() * total;

        for (var i = 0; i < members.Count; i++)
        {
            pick -= weights[i];
            if (pick < 0)
            {
                return i;
            }
        }

        return members.Count - 1;
    }

    /// <summary>
    /// <paramref name="member"/> refused a request of <paramref name="cluster"/> at its limits and expects to stay full
    /// for <paramref name="retryAfter"/> (the time it takes to finish one request): until then this process passes it
    /// over for that cluster without asking; then one request asks it, and the others still pass it over until that one
    /// is answered (<see cref="Served"/>, or refused again) or another <paramref name="retryAfter"/> has passed. Under
    /// overload every member refuses, and without this each request would ask every member in turn, one call each,
    /// multiplying the load of the cluster that already has too much by its number of member processes; with it this
    /// process asks a full member about once per request it finishes.
    /// </summary>
    public void Full(string member, string cluster, TimeSpan retryAfter)
    {
        if (retryAfter > TimeSpan.Zero)
        {
            var ticks = (long)(retryAfter.TotalSeconds * time.TimestampFrequency);
            _full[(member, cluster)] = new Fullness(time.GetTimestamp() + ticks, ticks);
        }
    }

    /// <summary><paramref name="member"/> served a request of <paramref name="cluster"/>: it had room.</summary>
    public void Served(string member, string cluster)
    {
        if (!_gone.IsEmpty)
        {
            _gone.TryRemove(member, out _);
        }

        if (!_full.IsEmpty)
        {
            _full.TryRemove((member, cluster), out _);
        }
    }

    /// <summary>The members of <paramref name="cluster"/> not known to be full: <paramref name="members"/> itself when
    /// none is. A member whose time to stay full has passed is among them; the request that chooses it takes the turn to
    /// ask it with <see cref="TryAsk"/>.</summary>
    public IReadOnlyList<MemberEndpoint> NotFull(string cluster, MemberEndpoint[] members)
    {
        if (_full.IsEmpty)
        {
            return members;
        }

        var now = time.GetTimestamp();
        List<MemberEndpoint>? open = null;
        for (var i = 0; i < members.Length; i++)
        {
            if (_full.TryGetValue((members[i].Id, cluster), out var fullness) && fullness.Until > now)
            {
                open ??= [.. members[..i]];
            }
            else
            {
                open?.Add(members[i]);
            }
        }

        return open is null ? members : open;
    }

    /// <summary>
    /// Takes the turn to ask <paramref name="member"/>, chosen among <see cref="NotFull"/>: true when it is not known to
    /// be full, or its time to stay full has passed and this caller is the one that moves the time on (the others pass
    /// it over until this one is answered, or another such time has passed); false when another caller took the turn a
    /// moment ago. Only the member actually asked is taken: the others whose time has passed stay open.
    /// </summary>
    public bool TryAsk(string member, string cluster)
    {
        if (_full.IsEmpty)
        {
            return true;
        }

        var key = (member, cluster);
        if (!_full.TryGetValue(key, out var fullness))
        {
            return true;
        }

        var now = time.GetTimestamp();
        return fullness.Until <= now && _full.TryUpdate(key, fullness with { Until = now + fullness.Ticks }, fullness);
    }

    /// <summary>
    /// Orleans reported <paramref name="member"/>'s process gone (<c>ClientNotAvailableException</c>): until
    /// <see cref="GoneTime"/> has passed, or it serves a request, this process's requests pass it over. Without this a
    /// client member cut off with its gateway stays listed for its lease, and each request that picks it pays Orleans'
    /// placement retries, about a second, before it learns again.
    /// </summary>
    public void Gone(string member) => _gone[member] = time.GetTimestamp();

    /// <summary><paramref name="members"/> without the processes reported gone (<see cref="Gone"/>); all of them when
    /// that would leave none, so that a member that came back is found.</summary>
    public IReadOnlyList<MemberEndpoint> NotGone(IReadOnlyList<MemberEndpoint> members)
    {
        if (_gone.IsEmpty)
        {
            return members;
        }

        var now = time.GetTimestamp();
        List<MemberEndpoint>? reachable = null;
        for (var i = 0; i < members.Count; i++)
        {
            if (_gone.TryGetValue(members[i].Id, out var at))
            {
                if (time.GetElapsedTime(at, now) < GoneTime)
                {
                    reachable ??= [.. members.Take(i)];
                    continue;
                }

                _gone.TryRemove(new KeyValuePair<string, long>(members[i].Id, at));
            }

            reachable?.Add(members[i]);
        }

        return reachable is null ? members : reachable.Count > 0 ? reachable : members;
    }

    /// <summary>Counts a request in flight to <paramref name="member"/> until the result is disposed.</summary>
    public InFlight Track(string member)
    {
        var now = time.GetTimestamp();
        if (time.GetElapsedTime(Volatile.Read(ref _swept), now) > IdleTime)
        {
            Sweep(now);
        }

        var load = _loads.GetOrAdd(member, static _ => new MemberLoad());
        Interlocked.Increment(ref load.InFlight);
        load.UsedAt = now;
        return new InFlight(load);
    }

    /// <summary>The member processes whose load is kept here.</summary>
    internal IEnumerable<string> Known => _loads.Keys;

    /// <summary>Takes the capacity <paramref name="member"/> reported with a reply.</summary>
    public void Reported(string member, double capacity)
    {
        if (_loads.TryGetValue(member, out var load))
        {
            load.ReportedAt = time.GetTimestamp();
            load.Reported = capacity;
        }
    }

    /// <summary>Drops the load of member processes not asked for a while, so processes long gone are not kept, and
    /// the members no longer full.</summary>
    private void Sweep(long now)
    {
        Volatile.Write(ref _swept, now);
        foreach (var (key, fullness) in _full)
        {
            if (fullness.Until <= now)
            {
                _full.TryRemove(new KeyValuePair<(string, string), Fullness>(key, fullness));
            }
        }

        foreach (var (member, at) in _gone)
        {
            if (time.GetElapsedTime(at, now) >= GoneTime)
            {
                _gone.TryRemove(new KeyValuePair<string, long>(member, at));
            }
        }

        foreach (var (member, load) in _loads)
        {
            if (Volatile.Read(ref load.InFlight) == 0 && time.GetElapsedTime(load.UsedAt, now) > IdleTime)
            {
                _loads.TryRemove(new KeyValuePair<string, MemberLoad>(member, load));
            }
        }
    }

    /// <summary>A member list as the rendezvous gave it, when, and whether a call has shown it stale since.</summary>
    private readonly record struct Kept(MemberEndpoint[] Members, long Fetched, bool Forgotten);

    /// <summary>A question to the rendezvous in flight, and when it was asked.</summary>
    private sealed record Question(Task<MemberEndpoint[]> Answer, long Asked);

    /// <summary>Until when a member is taken as full for a cluster, and how long it said it would stay full.</summary>
    private readonly record struct Fullness(long Until, long Ticks);

    /// <summary>What this process knows of one member process's load.</summary>
    internal sealed class MemberLoad
    {
        public int InFlight;
        public long UsedAt;
        public long ReportedAt;
        public double Reported = -1;
    }

    internal readonly struct InFlight(MemberLoad load) : IDisposable
    {
        public void Dispose() => Interlocked.Decrement(ref load.InFlight);
    }
}
