using System.Diagnostics;
using Iris.Calls;
using Iris.Protocol;
using Iris.Tests.Support;

namespace Iris.Tests.Requests;

/// <summary>The second copy that follows a call unanswered after <see cref="CallPolicy.HedgeAfter"/>: which answer the
/// caller takes, and when no copy is made. Calls here are task sources the test completes; time is real.</summary>
public sealed class HedgeTests : IDisposable
{
    private readonly CallPolicy _policy = new(TimeProvider.System, new Random(1));

    public void Dispose() => _policy.Dispose();

    private HedgeWhile Wanted(CancellationToken caller = default, CancellationToken contactLost = default) =>
        new(_policy.Start(TimeSpan.FromSeconds(30)), caller, contactLost);

    /// <summary>A hand-over to another target, copied after a second by <paramref name="copy"/>: its answer, and a task
    /// that ends when the copy is made.</summary>
    private (Task Answer, Task Copied) HandOver(Task first, Func<Task> copy)
    {
        var copied = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var answer = _policy.HedgedToAnotherAsync(
            first,
            () =>
            {
                copied.SetResult();
                return copy();
            },
            CallPolicy.HedgeAfter,
            Wanted());
        return (answer, copied.Task);
    }

    /// <summary>A call left unanswered until its copy was made: the two calls to complete, and the caller's answer.</summary>
    private async Task<(TaskCompletionSource<int> First, TaskCompletionSource<int> Copy, Task<int> Answer)> CopiedAsync()
    {
        var first = new TaskCompletionSource<int>();
        var copy = new TaskCompletionSource<int>();
        var copied = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var answer = _policy.HedgedAsync(first.Task, () => { copied.SetResult(); return copy.Task; }, Wanted());
        await copied.Task.WaitAsync(TimeSpan.FromSeconds(10));
        return (first, copy, answer);
    }

    [Fact]
    public async Task A_call_answered_in_time_makes_no_copy()
    {
        var first = new TaskCompletionSource<int>();
        var copies = 0;
        var answer = _policy.HedgedAsync(first.Task, () => Task.FromResult(Interlocked.Increment(ref copies)), Wanted());
        first.SetResult(7);
        Assert.Equal(7, await answer);
        await Task.Delay(CallPolicy.HedgeLatest + TimeSpan.FromMilliseconds(250));
        Assert.Equal(0, copies);
    }

    [Fact]
    public async Task A_gateway_lost_before_the_hedge_ends_the_wait_at_once_with_no_copy()
    {
        // The hedge's one wait ends at the hedge time or at a gateway loss: the caller asks again (a TimeoutException is
        // "no answer"), and the call left behind is not copied.
        using var lost = new CancellationTokenSource();
        var first = new TaskCompletionSource<int>();
        var copies = 0;
        var answer = _policy.HedgedAsync(first.Task, () => Task.FromResult(Interlocked.Increment(ref copies)), Wanted(contactLost: lost.Token));
        await Task.Delay(TimeSpan.FromMilliseconds(100));
        var started = Stopwatch.GetTimestamp();
        lost.Cancel();
        var error = await Assert.ThrowsAsync<TimeoutException>(() => answer.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.True(Stopwatch.GetElapsedTime(started) < CallPolicy.HedgeAfter, "the wait ended at the loss, not at the hedge time");
        Assert.Contains("gateway connection was lost", error.Message, StringComparison.Ordinal);
        await Task.Delay(CallPolicy.HedgeLatest);
        Assert.Equal(0, copies);
        first.SetException(new TimeoutException("never answered"));
    }

    [Fact]
    public async Task A_gateway_lost_after_the_copy_was_made_ends_the_wait_at_once()
    {
        using var lost = new CancellationTokenSource();
        var first = new TaskCompletionSource<int>();
        var copy = new TaskCompletionSource<int>();
        var copied = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var answer = _policy.HedgedAsync(first.Task, () => { copied.SetResult(); return copy.Task; }, Wanted(contactLost: lost.Token));
        await copied.Task.WaitAsync(TimeSpan.FromSeconds(10));

        lost.Cancel();
        await Assert.ThrowsAsync<TimeoutException>(() => answer.WaitAsync(TimeSpan.FromSeconds(1)));
        first.SetException(new TimeoutException("never answered"));
        copy.SetException(new TimeoutException("never answered"));
    }

    [Fact]
    public async Task A_copy_refused_by_another_split_does_not_fail_a_hand_over_the_first_split_accepts()
    {
        // A hand-over's copy goes to another rendezvous: its failure says nothing of the first call's.
        var first = new TaskCompletionSource();
        var (answer, copied) = HandOver(first.Task, () => Task.FromException(new InvalidOperationException("the other split failed to activate")));
        await copied.WaitAsync(TimeSpan.FromSeconds(10));
        await Task.Delay(TimeSpan.FromMilliseconds(100));
        Assert.False(answer.IsCompleted);

        first.SetResult();
        await answer.WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task A_hand_over_that_fails_before_the_hedge_time_goes_to_the_next_split_at_once()
    {
        // Its rendezvous' silo refused or unreachable: another split may take it now; waiting a second, or for a first
        // call a dead silo holds, would keep the sender waiting for nothing.
        var first = new TaskCompletionSource();
        var (answer, copied) = HandOver(first.Task, () => Task.CompletedTask);
        await Task.Delay(TimeSpan.FromMilliseconds(50));
        var started = Stopwatch.GetTimestamp();
        first.SetException(new SiloUnavailableException("the rendezvous' silo is unreachable"));

        await answer.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(copied.IsCompleted);
        Assert.True(Stopwatch.GetElapsedTime(started) < CallPolicy.HedgeAfter, "the copy followed the failure at once");
    }

    [Fact]
    public async Task A_split_chain_makes_no_copy_once_the_hand_over_is_settled()
    {
        // Each copy of a hand-over is itself followed by one to the next split, a second later than the one before,
        // until the hand-over is settled: then the chain stops (DisseminationSender cancels its caller token).
        using var settled = new CancellationTokenSource();
        var calls = new List<TaskCompletionSource>();
        Task ToSplit(int copy)
        {
            var call = new TaskCompletionSource();
            lock (calls)
            {
                calls.Add(call);
            }

            return copy + 1 >= Audience.Splits
                ? call.Task
                : _policy.HedgedToAnotherAsync(call.Task, () => ToSplit(copy + 1), (copy + 1) * CallPolicy.HedgeAfter, Wanted(settled.Token));
        }

        var answer = ToSplit(0);
        await Eventually.HoldsAsync(
            () =>
            {
                lock (calls)
                {
                    return calls.Count == 2;
                }
            },
            "a copy after a second");
        calls[0].SetResult();
        await answer.WaitAsync(TimeSpan.FromSeconds(5));
        settled.Cancel();

        await Task.Delay((2 * CallPolicy.HedgeAfter) + CallPolicy.HedgeLatest);
        lock (calls)
        {
            Assert.Equal(2, calls.Count);
        }
    }

    [Fact]
    public async Task An_unanswered_call_is_followed_by_one_copy_after_a_second_and_the_first_answer_wins()
    {
        var first = new TaskCompletionSource<int>();
        var copy = new TaskCompletionSource<int>();
        var copied = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = Stopwatch.GetTimestamp();
        var answer = _policy.HedgedAsync(first.Task, () => { copied.SetResult(); return copy.Task; }, Wanted());
        await copied.Task.WaitAsync(TimeSpan.FromSeconds(10));
        var after = Stopwatch.GetElapsedTime(started);
        Assert.InRange(after, CallPolicy.HedgeAfter, CallPolicy.HedgeLatest + TimeSpan.FromSeconds(1));
        copy.SetResult(2);
        Assert.Equal(2, await answer);
        first.SetException(new TimeoutException("late"));
    }

    [Fact]
    public async Task A_refusal_that_the_copy_did_not_start_waits_for_the_other_copy_which_may_have_started_the_run()
    {
        // The first copy's refusal (the member was full) comes back after the second copy was sent; the second
        // started the run. Taking the refusal would send the request to another member: run twice.
        var (first, copy, answer) = await CopiedAsync();
        first.SetException(new MemberRefusedException(MemberReplyStatus.Overloaded, "full"));
        await Task.Delay(100);
        Assert.False(answer.IsCompleted);
        copy.SetResult(3);
        Assert.Equal(3, await answer);
    }

    [Fact]
    public async Task When_both_copies_fail_the_failure_that_says_the_call_may_have_arrived_wins()
    {
        var (first, copy, answer) = await CopiedAsync();
        copy.SetException(new MemberRefusedException(MemberReplyStatus.NotHere, null));
        first.SetException(new SiloUnavailableException("the silo died with the call"));
        await Assert.ThrowsAsync<SiloUnavailableException>(() => answer);

        // And the other way round: a refusal that comes last does not hide a first copy that may have arrived.
        var (second, secondCopy, secondAnswer) = await CopiedAsync();
        second.SetException(new TimeoutException("no answer"));
        secondCopy.SetException(new MemberRefusedException(MemberReplyStatus.Overloaded, null));
        await Assert.ThrowsAsync<TimeoutException>(() => secondAnswer);
    }

    [Fact]
    public async Task An_answer_from_the_member_settles_the_call_at_once()
    {
        var (first, copy, answer) = await CopiedAsync();
        copy.SetException(new MemberRefusedException(MemberReplyStatus.Running, null));
        await Assert.ThrowsAsync<MemberRefusedException>(() => answer);
    }

    [Fact]
    public async Task No_copy_is_made_once_the_caller_stopped_waiting_or_for_a_caller_with_less_time()
    {
        using var cancelled = new CancellationTokenSource();
        var first = new TaskCompletionSource<int>();
        var copies = 0;
        var answer = _policy.HedgedAsync(first.Task, () => Task.FromResult(Interlocked.Increment(ref copies)), Wanted(cancelled.Token));
        await cancelled.CancelAsync();
        await Task.Delay(CallPolicy.HedgeLatest + TimeSpan.FromMilliseconds(250));
        Assert.Equal(0, copies);
        first.SetResult(1);
        Assert.Equal(1, await answer);

        var brief = new TaskCompletionSource<int>();
        var briefAnswer = _policy.HedgedAsync(
            brief.Task, () => Task.FromResult(Interlocked.Increment(ref copies)), new HedgeWhile(_policy.Start(TimeSpan.FromSeconds(1)), default, default));
        await Task.Delay(CallPolicy.HedgeLatest + TimeSpan.FromMilliseconds(250));
        Assert.Equal(0, copies);
        brief.SetResult(4);
        Assert.Equal(4, await briefAnswer);
    }

    [Fact]
    public async Task A_copy_that_cannot_be_made_leaves_the_first_copys_answer()
    {
        var first = new TaskCompletionSource<int>();
        var tried = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var answer = _policy.HedgedAsync<int>(first.Task, () => { tried.SetResult(); throw new ObjectDisposedException("client"); }, Wanted());
        await tried.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(answer.IsCompleted);
        first.SetResult(5);
        Assert.Equal(5, await answer);
    }
}
