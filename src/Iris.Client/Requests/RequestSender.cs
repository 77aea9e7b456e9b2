using System.Diagnostics;
using Iris.Balancing;
using Iris.Calls;
using Iris.Diagnostics;
using Iris.Protocol;

namespace Iris.Requests;

/// <summary>
/// Sends requests and tunnel opens to one member of a cluster, from any process, straight to the member's host (one
/// hop; from an Orleans client, requests to a silo's members go by <see cref="DirectRoutes"/>). A request's id is chosen once, by the first hop, and every repeat carries it; member hosts run an id at most
/// once. The rules, kept here for every caller:
/// <list type="bullet">
/// <item>a member that refused before starting (overloaded, or it has left that process) is passed over for the next
/// one; only when every member is overloaded does the caller get <see cref="IrisOverloadedException"/>. A member that
/// refused as overloaded, a request of this one or of another from this process, is passed over without asking for as
/// long as it said it would stay full (<see cref="MemberDirectory.Full"/>);</item>
/// <item>a call that may have reached its member but whose answer was lost, or has not come after
/// <see cref="CallPolicy.ReaskAfter"/>, is repeated to the same member with the same id, which joins the run there or
/// gets its reply; a first copy still unanswered after <see cref="CallPolicy.HedgeAfter"/> is followed by a second
/// while it stays out (an answer can be lost with no error at all);</item>
/// <item>when that member's process is gone (no longer listed, or its client left) after a call may have reached it,
/// the caller gets <see cref="IrisOutcomeUnknownException"/>, unless the member is idempotent, when the request goes
/// to another member with the same id;</item>
/// <item>time is counted as time remaining on this process's clock, and travels as such.</item>
/// </list>
/// </summary>
internal sealed class RequestSender(MemberDirectory directory, IGrainFactory grains, CallPolicy policy, DirectRoutes? direct = null)
{
    /// <summary>How much longer than <see cref="CallPolicy.ReaskAfter"/> a call to another process may take to end in
    /// Orleans' response timeout (which Orleans checks periodically, not to the millisecond).</summary>
    private static readonly TimeSpan ResponseTimeoutSlack = TimeSpan.FromSeconds(2);

    private volatile Here? _here;

    /// <summary>
    /// Sends the requests this process makes to its own members straight to <paramref name="host"/>, not through
    /// Orleans: the reply of a call that never leaves the process cannot be lost on its way, and the call costs no
    /// messages. <paramref name="id"/> is this process's member endpoint id. Until this is called requests to
    /// members here go through Orleans like any other.
    /// </summary>
    public void ServeHere(string id, IMemberHost host) => _here = new Here(id, host);

    /// <summary>
    /// Sends request <paramref name="id"/> and returns the member's reply. With <paramref name="isolate"/>, the
    /// caller's array is not shared with a member in this process, nor the member's reply with the caller (a call
    /// through Orleans copies them anyway); without it, the caller hands the request over and takes the reply as is,
    /// as the cluster grain does with arrays Orleans made for it.
    /// </summary>
    public async Task<byte[]> RequestAsync(string cluster, Guid id, byte[] request, TimeSpan timeout, bool isolate, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(cluster);
        ArgumentNullException.ThrowIfNull(request);
        CheckTimeout(timeout);
        // The clock is read for the duration only while someone listens to it.
        var started = IrisMetrics.RequestDuration.Enabled ? Stopwatch.GetTimestamp() : 0;
        IrisMetrics.Requests.Add(1);
        IrisMetrics.Bytes.Add(request.Length, IrisMetrics.RequestDirection);
        using var activity = IrisTracing.Start("request", cluster, ActivityKind.Client);
        activity?.SetTag("messaging.message.id", id);
        try
        {
            var budget = policy.Start(timeout);
            var (answer, member) = await ToMemberAsync<MemberAnswer, RequestCall>(
                cluster,
                budget,
                anyMember: false,
                passOverFull: true,
                new RequestCall(this, id, cluster, request, isolate, budget),
                cancellationToken).ConfigureAwait(false);
            directory.Reported(member.Id, answer.Capacity);
            var data = isolate && IsHere(member) is not null ? [.. answer.Data] : answer.Data;
            IrisMetrics.Bytes.Add(data.Length, IrisMetrics.ReplyDirection);
            return data;
        }
        catch (Exception e)
        {
            IrisMetrics.Failures.Add(1, new KeyValuePair<string, object?>("error", IrisMetrics.ErrorType(e)));
            IrisTracing.Failed(activity, e);
            throw;
        }
        finally
        {
            if (started != 0)
            {
                IrisMetrics.RequestDuration.Record(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
        }
    }

    /// <summary>One call of request <paramref name="id"/> to <paramref name="member"/>, by the shortest route there is;
    /// with <paramref name="hedge"/>, followed by a second copy by the same route when it has no answer after
    /// <see cref="CallPolicy.HedgeAfter"/> (a copy by another route could overtake one held up on the way).</summary>
    private Task<MemberAnswer> CallAsync(
        MemberEndpoint member, IMemberHostService? oneHop, Guid id, string cluster, byte[] request, bool isolate, CallBudget budget, HedgeWhile? hedge)
    {
        if (IsHere(member) is { } here)
        {
            IrisMetrics.RequestCalls.Add(1, IrisMetrics.RouteHere);
            return here.Request(id, cluster, isolate ? [.. request] : request, budget.Remaining);
        }

        // The route is chosen once; a second copy takes the same one. A struct, handed to the hedge as its state: a
        // request costs no closure for a copy it will rarely make.
        var route = new Route(this, oneHop, member, id, cluster, request, budget);
        var first = Send(route);
        return hedge is { } wanted ? policy.HedgedAsync(first, static route => route.Sender.Send(route), route, wanted) : first;
    }

    /// <summary>One copy of a request by <paramref name="route"/>: to the member's silo in one hop when it has a
    /// service to call there, else to its member host grain.</summary>
    private Task<MemberAnswer> Send(Route route)
    {
        var (_, service, member, id, cluster, request, budget) = route;
        if (service is not null)
        {
            IrisMetrics.RequestCalls.Add(1, IrisMetrics.RouteDirect);
            return DirectRoutes.RequestAsync(service, member, id, cluster, request, budget.Remaining);
        }

        return ByGrain(member, id, cluster, request, budget);
    }

    // Apart from Send: its closure would be made for every copy, whichever the route.
    private Task<MemberAnswer> ByGrain(MemberEndpoint member, Guid id, string cluster, byte[] request, CallBudget budget)
    {
        IrisMetrics.RequestCalls.Add(1, IrisMetrics.RouteGrain);
        return member.Call(grains, host => host.Request(id, cluster, request, budget.Remaining));
    }

    /// <summary>
    /// Offers tunnel <paramref name="id"/> to one member. Before each offer the opener's end is told which process it
    /// asks, so frames from an end whose acceptance was lost are refused; an offer repeated to the same member gets
    /// the same end. Any member may take the tunnel when the one asked is gone: nothing reached the application yet.
    /// </summary>
    public Task<TunnelAccepted> OpenTunnelAsync(
        string cluster, Guid id, MemberEndpoint opener, int openerWindow, Action<string> asking, TimeSpan timeout, CancellationToken cancellationToken)
    {
        CheckTimeout(timeout);
        var budget = policy.Start(timeout);
        return OpenAsync();

        async Task<TunnelAccepted> OpenAsync()
        {
            var started = IrisMetrics.TunnelOpenDuration.Enabled ? Stopwatch.GetTimestamp() : 0;
            IrisMetrics.TunnelOpens.Add(1);
            using var activity = IrisTracing.Start("tunnel open", cluster, ActivityKind.Client);
            activity?.SetTag("iris.tunnel.id", id);
            try
            {
                return (await ToMemberAsync<TunnelAccepted, FuncCall<TunnelAccepted>>(
                    cluster,
                    budget,
                    anyMember: true,
                    passOverFull: false,
                    new FuncCall<TunnelAccepted>(member =>
                    {
                        asking(member.Id);
                        return member.Call(grains, host => host.OpenTunnel(cluster, id, opener, openerWindow, budget.Remaining));
                    }),
                    cancellationToken).ConfigureAwait(false)).Result;
            }
            catch (Exception e)
            {
                IrisTracing.Failed(activity, e);
                throw;
            }
            finally
            {
                if (started != 0)
                {
                    IrisMetrics.TunnelOpenDuration.Record(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                }
            }
        }
    }

    /// <summary>This process's member host, when <paramref name="member"/> is this process.</summary>
    private IMemberHost? IsHere(MemberEndpoint member) =>
        _here is { } here && string.Equals(here.Id, member.Id, StringComparison.Ordinal) ? here.Host : null;

    private static void CheckTimeout(TimeSpan timeout)
    {
        if (timeout <= TimeSpan.Zero || timeout > CallLimits.MaxTimeout)
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, $"A timeout must be positive and at most {CallLimits.MaxTimeout}.");
        }
    }

    /// <summary>Makes <paramref name="call"/> to one member after another until one answers; returns the answer and
    /// the member that gave it. With <paramref name="passOverFull"/> (requests, which members' limits apply to; not
    /// tunnel opens), members known to be full are not asked.</summary>
    private async Task<(T Result, MemberEndpoint Member)> ToMemberAsync<T, TCall>(
        string cluster, CallBudget budget, bool anyMember, bool passOverFull, TCall call, CancellationToken cancellationToken)
        where TCall : struct, IMemberCall<T>
    {
        var key = directory.NextKey(Audience.Cluster(cluster));
        HashSet<string>? passed = null;
        var overloaded = 0;
        for (var round = 1; ; round++)
        {
            var members = await MembersAsync(cluster, key, budget, cancellationToken).ConfigureAwait(false);
            if (members.Length == 0)
            {
                (key, members) = await AnySplitAsync(cluster, key, budget, cancellationToken).ConfigureAwait(false);
                if (members.Length == 0)
                {
                    throw new NoMembersException(cluster);
                }
            }

            var notFull = passOverFull ? directory.NotFull(cluster, members) : members;
            var open = directory.NotGone(notFull);
            var candidates = Except(open, passed);
            if (candidates.Count == 0 && open.Count < notFull.Count)
            {
                // Only members reported gone moments ago are left: one of them may be back.
                candidates = Except(notFull, passed);
            }

            if (candidates.Count == 0)
            {
                if (overloaded > 0 || notFull.Count < members.Length)
                {
                    throw new IrisOverloadedException(cluster, $"each of its {members.Length} member processes refused the request, or another from this process moments ago, at its limits");
                }

                // Every member known here refused as gone: the list is stale. Ask again after a pause.
                directory.Forget(key);
                passed!.Clear();
                await policy.PauseAsync(round, budget, cancellationToken).ConfigureAwait(false);
                continue;
            }

            var member = directory.Choose(candidates);
            if (passOverFull && !directory.TryAsk(member.Id, cluster))
            {
                // Its time to stay full had passed and another request took the turn to ask it: choose again.
                continue;
            }

            var (done, result, status) = await ToOneMemberAsync<T, TCall>(cluster, key, member, anyMember || member.Idempotent, budget, call, cancellationToken).ConfigureAwait(false);
            if (done)
            {
                if (passOverFull)
                {
                    directory.Served(member.Id, cluster);
                }

                return (result!, member);
            }

            (passed ??= new HashSet<string>(StringComparer.Ordinal)).Add(member.Id);
            if (status == MemberReplyStatus.Overloaded)
            {
                overloaded++;
            }
            else
            {
                directory.Forget(key);
            }
        }
    }

    /// <summary><paramref name="members"/> but those <paramref name="passed"/> over (a loop, not a lambda: a lambda's
    /// closure would be made for every request).</summary>
    private static IReadOnlyList<MemberEndpoint> Except(IReadOnlyList<MemberEndpoint> members, HashSet<string>? passed)
    {
        if (passed is null)
        {
            return members;
        }

        var left = new List<MemberEndpoint>(members.Count);
        foreach (var member in members)
        {
            if (!passed.Contains(member.Id))
            {
                left.Add(member);
            }
        }

        return left;
    }

    /// <summary>Calls one member, repeating the same call while contact is lost and the member still listed. Returns
    /// done with the result, or not done with why another member should be tried (it did not start there).</summary>
    private async ValueTask<(bool Done, T? Result, MemberReplyStatus Status)> ToOneMemberAsync<T, TCall>(
        string cluster, string key, MemberEndpoint member, bool mayRunElsewhere, CallBudget budget, TCall call, CancellationToken cancellationToken)
        where TCall : struct, IMemberCall<T>
    {
        Exception? lost = null;
        var mayHaveRun = false;

        // Whether a copy found the run going at the member.
        var running = false;

        // When the last copy that found the run going there was sent (at first: when the first copy was).
        var contact = policy.Time.GetTimestamp();
        for (var attempt = 1; ; attempt++)
        {
            if (budget.IsExpired)
            {
                throw lost is null ? CallPolicy.Timeout(cluster, budget) : CallPolicy.OutcomeUnknown(cluster, lost);
            }

            if (attempt > 1 && policy.Time.GetElapsedTime(contact) > CallPolicy.RepeatWindow)
            {
                // The member may have forgotten a run that finished: another copy could run it again.
                if (mayRunElsewhere)
                {
                    return (false, default, MemberReplyStatus.NotHere);
                }

                throw CallPolicy.OutcomeUnknown(cluster, lost ?? new TimeoutException($"no answer from the member for {CallPolicy.RepeatWindow}"));
            }

            var sent = attempt == 1 ? contact : policy.Time.GetTimestamp();
            IMemberHostService? oneHop = null;
            try
            {
                T result;
                using (directory.Track(member.Id))
                {
                    // A call to another process ends within its response timeout: while the caller's time outlasts
                    // that, and nothing can cancel it, it needs no timer of its own.
                    // In a client, a gateway connection lost while the call was out ends the wait at once: an answer
                    // through it can never come (GatewayLoss), and the loop asks again.
                    // A copy that has no answer after a second is followed by another (CallPolicy.HedgeAfter): its
                    // answer may have been lost without an error. Not while the run is known to be going there: the
                    // member holds each copy then until the run ends or it answers that it still runs.
                    var remote = IsHere(member) is null;

                    // The route of this attempt's copies (a request's): one hop to the member's silo, or its grain.
                    oneHop = remote && call.Hedges ? direct?.To(member) : null;
                    var gatewayLost = remote ? policy.ContactLost : CancellationToken.None;
                    HedgeWhile? hedge = remote && !running && call.Hedges ? new(budget, cancellationToken, gatewayLost) : null;
                    var pending = call.Call(member, oneHop, hedge);
                    var longest = CallPolicy.ReaskAfter + ResponseTimeoutSlack + (hedge is null ? TimeSpan.Zero : CallPolicy.HedgeLatest);
                    // A hedged call's own wait ends at a gateway loss too (CallPolicy.HedgedAsync).
                    result = pending.IsCompleted ? await pending.ConfigureAwait(false)
                        : !cancellationToken.CanBeCanceled && remote && budget.Remaining > longest
                            ? await (hedge is null ? CallPolicy.UntilLostAsync(pending, gatewayLost) : pending).ConfigureAwait(false)
                            : await policy.WithinAsync(pending, budget, cancellationToken, gatewayLost).ConfigureAwait(false);
                }

                return (true, result, default);
            }
            catch (MemberRefusedException refusal) when (refusal.Status == MemberReplyStatus.Running)
            {
                // A copy found the run going there: ask again at once, and count the window from this copy.
                contact = sent;
                mayHaveRun = true;
                running = true;
                IrisMetrics.Repeats.Add(1);
            }
            catch (MemberRefusedException refusal) when (refusal.NotStarted)
            {
                if (refusal.Status == MemberReplyStatus.Overloaded)
                {
                    directory.Full(member.Id, cluster, refusal.RetryAfter);
                }

                // This copy did not start there. An earlier copy still on its way (calls travel different
                // connections) could arrive after this refusal was forgotten and run: after an unanswered copy, only
                // an idempotent member's request goes elsewhere.
                if (mayHaveRun && !mayRunElsewhere)
                {
                    throw CallPolicy.OutcomeUnknown(cluster, refusal);
                }

                return (false, default, refusal.Status);
            }
            catch (MemberRefusedException)
            {
                // It expired there waiting for a slot: the caller's time is up.
                throw CallPolicy.Timeout(cluster, budget);
            }
            catch (TimeoutException) when (budget.IsExpired)
            {
                // The member was reachable (the call was on its way) but did not answer in time.
                throw lost is null ? CallPolicy.Timeout(cluster, budget) : CallPolicy.OutcomeUnknown(cluster, lost);
            }
            catch (Exception e) when (CallPolicy.Classify(e, cancellationToken) is var failure && failure != CallFailure.Answered)
            {
                if (failure == CallFailure.NoAnswer)
                {
                    // No answer yet, or one lost on its way: the same call again, which joins the run there.
                    mayHaveRun = true;
                    IrisMetrics.Repeats.Add(1);
                    continue;
                }

                // Refused on the way or cut off in one hop: a repeat goes through the grain.
                if (oneHop is not null)
                {
                    direct!.Failed(member, e);
                }

                if (failure == CallFailure.ProcessGone || (failure == CallFailure.NotDelivered && lost is null && !mayHaveRun))
                {
                    if (failure == CallFailure.ProcessGone)
                    {
                        directory.Gone(member.Id);
                    }

                    // This attempt did not reach it; an earlier one may have, before its process went.
                    if ((lost is not null || mayHaveRun) && !mayRunElsewhere)
                    {
                        throw CallPolicy.OutcomeUnknown(cluster, e);
                    }

                    return (false, default, MemberReplyStatus.NotHere);
                }

                // The call may have reached the member: repeat it there, with the same id, while it is listed.
                lost = e;
                mayHaveRun = true;
                IrisMetrics.Repeats.Add(1);
                directory.Forget(key);
                await policy.PauseAsync(attempt, budget, cancellationToken).ConfigureAwait(false);
                if (!await StillListedAsync(key, member, budget, cancellationToken).ConfigureAwait(false))
                {
                    if (!mayRunElsewhere)
                    {
                        throw CallPolicy.OutcomeUnknown(cluster, e);
                    }

                    return (false, default, MemberReplyStatus.NotHere);
                }
            }
        }
    }

    /// <summary>
    /// The members another split of <paramref name="cluster"/> lists, when the one under <paramref name="empty"/> lists
    /// none: every member process registers with every split, so one split's empty list says only that its rendezvous
    /// has not heard from them (it was just placed anew, on a silo that took over its ring key, and the members have
    /// not renewed with it yet), not that the cluster has no members. Returns the key and list of a split that lists
    /// members, or an empty list when none does.
    /// </summary>
    private async Task<(string Key, MemberEndpoint[] Members)> AnySplitAsync(string cluster, string empty, CallBudget budget, CancellationToken cancellationToken)
    {
        var others = directory.KeysOf(Audience.Cluster(cluster)).Where(key => !string.Equals(key, empty, StringComparison.Ordinal)).ToArray();
        var lists = await Task.WhenAll(others.Select(key => MembersAsync(cluster, key, budget, cancellationToken).AsTask())).ConfigureAwait(false);
        for (var i = 0; i < others.Length; i++)
        {
            if (lists[i].Length > 0)
            {
                return (others[i], lists[i]);
            }
        }

        return (empty, []);
    }

    private ValueTask<MemberEndpoint[]> MembersAsync(string cluster, string key, CallBudget budget, CancellationToken cancellationToken)
    {
        var known = directory.MembersAsync(key);
        return known.IsCompletedSuccessfully ? known : new ValueTask<MemberEndpoint[]>(FetchMembersAsync(cluster, key, known.AsTask(), budget, cancellationToken));
    }

    private async Task<MemberEndpoint[]> FetchMembersAsync(string cluster, string key, Task<MemberEndpoint[]> first, CallBudget budget, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var asking = attempt == 1 ? first : directory.MembersAsync(key).AsTask();
                return await policy.WithinAsync(asking, budget, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException) when (budget.IsExpired)
            {
                throw CallPolicy.Timeout(cluster, budget);
            }
            catch (Exception e) when (CallPolicy.Classify(e, cancellationToken) != CallFailure.Answered)
            {
                // The rendezvous is moving or its silo died; nothing was sent to a member yet. Its failure is never
                // the caller's: past the caller's time it is a timeout like any other.
                if (budget.IsExpired)
                {
                    throw CallPolicy.Timeout(cluster, budget);
                }

                await policy.PauseAsync(attempt, budget, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Whether <paramref name="member"/> is still listed for the cluster (its process alive); when the list
    /// cannot be had, it is taken as listed, and the next repeat tells.</summary>
    private async Task<bool> StillListedAsync(string key, MemberEndpoint member, CallBudget budget, CancellationToken cancellationToken)
    {
        try
        {
            var members = await policy.WithinAsync(directory.MembersAsync(key).AsTask(), budget, cancellationToken).ConfigureAwait(false);
            return members.Any(m => string.Equals(m.Id, member.Id, StringComparison.Ordinal));
        }
        catch (Exception e) when (e is TimeoutException || CallPolicy.Classify(e, cancellationToken) != CallFailure.Answered)
        {
            return true;
        }
    }

    private sealed record Here(string Id, IMemberHost Host);

    /// <summary>The call <see cref="ToMemberAsync"/> makes to each member it tries (with a hedge while the caller
    /// waits): a struct type argument, so that choosing and calling costs no closure.</summary>
    private interface IMemberCall<T>
    {
        /// <summary>Whether a call is followed by a second copy when asked to (<see cref="CallPolicy.HedgedAsync{T}(Task{T}, Func{Task{T}}, HedgeWhile)"/>,
        /// whose wait also ends at a gateway loss).</summary>
        bool Hedges { get; }

        /// <summary>Calls <paramref name="member"/>, by <paramref name="oneHop"/> when it is given (requests only).</summary>
        Task<T> Call(MemberEndpoint member, IMemberHostService? oneHop, HedgeWhile? hedge);
    }

    private readonly record struct RequestCall(RequestSender Sender, Guid Id, string Cluster, byte[] Request, bool Isolate, CallBudget Budget) : IMemberCall<MemberAnswer>
    {
        public bool Hedges => true;

        public Task<MemberAnswer> Call(MemberEndpoint member, IMemberHostService? oneHop, HedgeWhile? hedge) =>
            Sender.CallAsync(member, oneHop, Id, Cluster, Request, Isolate, Budget, hedge);
    }

    /// <summary>A call never hedged (tunnel opens: a second copy would tell the opener's end again which process it
    /// asks, after the caller may have moved on to another).</summary>
    private readonly record struct FuncCall<T>(Func<MemberEndpoint, Task<T>> Function) : IMemberCall<T>
    {
        public bool Hedges => false;

        public Task<T> Call(MemberEndpoint member, IMemberHostService? oneHop, HedgeWhile? hedge) => Function(member);
    }

    /// <summary>How one request goes to a member in another process: <paramref name="Service"/>, the member's silo
    /// in one hop, or null for its member host grain.</summary>
    private readonly record struct Route(
        RequestSender Sender, IMemberHostService? Service, MemberEndpoint Member, Guid Id, string Cluster, byte[] Request, CallBudget Budget);
}
