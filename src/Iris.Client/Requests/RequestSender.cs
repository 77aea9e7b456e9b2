using System.Diagnostics;
using Iris.Balancing;
using Iris.Calls;
using Iris.Diagnostics;
using Iris.Protocol;

namespace Iris.Requests;

/// <summary>
/// Sends requests and tunnel opens to one member of a cluster, from any process, straight to the member's host (one
/// hop). A request's id is chosen once, by the first hop, and every repeat carries it; member hosts run an id at most
/// once. The rules, kept here for every caller:
/// <list type="bullet">
/// <item>a member that refused before starting (overloaded, or it has left that process) is passed over for the next
/// one; only when every member is overloaded does the caller get <see cref="IrisOverloadedException"/>;</item>
/// <item>a call that may have reached its member but whose answer was lost, or has not come after
/// <see cref="CallPolicy.ReaskAfter"/>, is repeated to the same member with the same id, which joins the run there or
/// gets its reply;</item>
/// <item>when that member's process is gone (no longer listed, or its client left) after a call may have reached it,
/// the caller gets <see cref="IrisOutcomeUnknownException"/>, unless the member is idempotent, when the request goes
/// to another member with the same id;</item>
/// <item>time is counted as time remaining on this process's clock, and travels as such.</item>
/// </list>
/// </summary>
internal sealed class RequestSender(MemberDirectory directory, IGrainFactory grains, CallPolicy policy)
{
    /// <summary>Sends request <paramref name="id"/> and returns the member's reply.</summary>
    public async Task<byte[]> RequestAsync(string cluster, Guid id, byte[] request, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(cluster);
        ArgumentNullException.ThrowIfNull(request);
        CheckTimeout(timeout);
        var started = Stopwatch.GetTimestamp();
        IrisMetrics.Requests.Add(1);
        IrisMetrics.Bytes.Add(request.Length, IrisMetrics.RequestDirection);
        try
        {
            var budget = policy.Start(timeout);
            var data = await ToMemberAsync(
                cluster,
                budget,
                anyMember: false,
                async member =>
                {
                    var answer = await member.Call(grains, host => host.Request(id, cluster, request, budget.Remaining)).ConfigureAwait(false);
                    directory.Reported(member.Id, answer.Capacity);
                    return answer.Data;
                },
                cancellationToken).ConfigureAwait(false);
            IrisMetrics.Bytes.Add(data.Length, IrisMetrics.ReplyDirection);
            return data;
        }
        catch (Exception e)
        {
            IrisMetrics.Failures.Add(1, new KeyValuePair<string, object?>("error", IrisMetrics.ErrorType(e)));
            throw;
        }
        finally
        {
            IrisMetrics.RequestDuration.Record(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
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
        return ToMemberAsync(
            cluster,
            budget,
            anyMember: true,
            member =>
            {
                asking(member.Id);
                return member.Call(grains, host => host.OpenTunnel(cluster, id, opener, openerWindow, budget.Remaining));
            },
            cancellationToken);
    }

    private static void CheckTimeout(TimeSpan timeout)
    {
        if (timeout <= TimeSpan.Zero || timeout > CallLimits.MaxTimeout)
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, $"A timeout must be positive and at most {CallLimits.MaxTimeout}.");
        }
    }

    private async Task<T> ToMemberAsync<T>(
        string cluster, CallBudget budget, bool anyMember, Func<MemberEndpoint, Task<T>> call, CancellationToken cancellationToken)
    {
        var key = directory.NextKey(Audience.Cluster(cluster));
        HashSet<string>? passed = null;
        var overloaded = 0;
        for (var round = 1; ; round++)
        {
            var members = await MembersAsync(cluster, key, budget, cancellationToken).ConfigureAwait(false);
            if (members.Length == 0)
            {
                throw new NoMembersException(cluster);
            }

            IReadOnlyList<MemberEndpoint> candidates = passed is null ? members : [.. members.Where(m => !passed.Contains(m.Id))];
            if (candidates.Count == 0)
            {
                if (overloaded > 0)
                {
                    throw new IrisOverloadedException(cluster, $"each of its {members.Length} member processes refused the request at its limits");
                }

                // Every member known here refused as gone: the list is stale. Ask again after a pause.
                directory.Forget(key);
                passed!.Clear();
                await policy.PauseAsync(round, budget, cancellationToken).ConfigureAwait(false);
                continue;
            }

            var member = directory.Choose(candidates);
            var (done, result, status) = await ToOneMemberAsync(cluster, key, member, anyMember || member.Idempotent, budget, call, cancellationToken).ConfigureAwait(false);
            if (done)
            {
                return result!;
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

    /// <summary>Calls one member, repeating the same call while contact is lost and the member still listed. Returns
    /// done with the result, or not done with why another member should be tried (it did not start there).</summary>
    private async Task<(bool Done, T? Result, MemberReplyStatus Status)> ToOneMemberAsync<T>(
        string cluster, string key, MemberEndpoint member, bool mayRunElsewhere, CallBudget budget, Func<MemberEndpoint, Task<T>> call,
        CancellationToken cancellationToken)
    {
        Exception? lost = null;
        for (var attempt = 1; ; attempt++)
        {
            if (budget.IsExpired)
            {
                throw lost is null ? CallPolicy.Timeout(cluster, budget) : CallPolicy.OutcomeUnknown(cluster, lost);
            }

            try
            {
                T result;
                using (directory.Track(member.Id))
                {
                    result = await policy.WithinAsync(call(member), budget, cancellationToken).ConfigureAwait(false);
                }

                return (true, result, default);
            }
            catch (MemberRefusedException refusal) when (refusal.NotStarted)
            {
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
            catch (Exception e) when (CallPolicy.Classify(e) is var failure && failure != CallFailure.Answered)
            {
                if (failure == CallFailure.NoAnswer)
                {
                    // No answer yet, or one lost on its way: the same call again, which joins the run there.
                    IrisMetrics.Repeats.Add(1);
                    continue;
                }

                if (failure == CallFailure.ProcessGone || (failure == CallFailure.NotDelivered && lost is null))
                {
                    // This attempt did not reach it; an earlier one may have, before its process went.
                    if (lost is not null && !mayRunElsewhere)
                    {
                        throw CallPolicy.OutcomeUnknown(cluster, e);
                    }

                    return (false, default, MemberReplyStatus.NotHere);
                }

                // The call may have reached the member: repeat it there, with the same id, while it is listed.
                lost = e;
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

    private async Task<MemberEndpoint[]> MembersAsync(string cluster, string key, CallBudget budget, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await policy.WithinAsync(directory.MembersAsync(key), budget, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException) when (budget.IsExpired)
            {
                throw CallPolicy.Timeout(cluster, budget);
            }
            catch (Exception e) when (CallPolicy.Classify(e) != CallFailure.Answered)
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
            var members = await policy.WithinAsync(directory.MembersAsync(key), budget, cancellationToken).ConfigureAwait(false);
            return members.Any(m => string.Equals(m.Id, member.Id, StringComparison.Ordinal));
        }
        catch (Exception e) when (e is TimeoutException || CallPolicy.Classify(e) != CallFailure.Answered)
        {
            return true;
        }
    }
}
