using Iris.Balancing;
using Iris.Protocol;
using Microsoft.Extensions.Time.Testing;

namespace Iris.Tests.Balancing;

/// <summary>The weighted choice of a member process, and the member lists kept and asked for, on a fake clock and a
/// seeded random.</summary>
public sealed class MemberDirectoryTests
{
    private static readonly MemberEndpoint Fast = new(null, 800) { Id = "fast" };
    private static readonly MemberEndpoint Slow = new(null, 800) { Id = "slow" };

    private static MemberDirectory Directory(FakeTimeProvider time) => new(grains: null!, time, new Random(7));

    /// <summary>How often <paramref name="first"/> is chosen over <paramref name="second"/>.</summary>
    private static double ShareOf(MemberDirectory directory, MemberEndpoint first, MemberEndpoint second, int picks = 20_000)
    {
        var chosen = 0;
        for (var i = 0; i < picks; i++)
        {
            if (directory.Choose([first, second]) == first)
            {
                chosen++;
            }
        }

        return chosen / (double)picks;
    }

    private static double ShareOfFast(MemberDirectory directory) => ShareOf(directory, Fast, Slow);

    [Fact]
    public void With_nothing_in_flight_members_are_chosen_in_proportion_to_their_listed_capacity()
    {
        var directory = Directory(new FakeTimeProvider());
        var share = ShareOf(directory, new MemberEndpoint(null, 300) { Id = "a" }, new MemberEndpoint(null, 100) { Id = "b" });
        Assert.InRange(share, 0.73, 0.77);
    }

    [Fact]
    public void Members_beyond_the_weights_kept_on_the_stack_are_chosen_in_proportion_to_their_capacity_too()
    {
        // 200 members: one of capacity 199 against 199 of capacity 1, so it takes about half.
        var directory = Directory(new FakeTimeProvider());
        var big = new MemberEndpoint(null, 199) { Id = "big" };
        MemberEndpoint[] members = [.. Enumerable.Range(0, 199).Select(i => new MemberEndpoint(null, 1) { Id = $"small{i}" }), big];
        var chosen = 0;
        for (var i = 0; i < 20_000; i++)
        {
            if (directory.Choose(members) == big)
            {
                chosen++;
            }
        }

        Assert.InRange(chosen / 20_000.0, 0.48, 0.52);
    }

    [Fact]
    public void Senders_rotate_over_the_rendezvous_keys_of_a_name()
    {
        var directory = Directory(new FakeTimeProvider());
        var keys = Enumerable.Range(0, 8).Select(_ => directory.NextKey(Audience.Cluster("x"))).ToArray();
        Assert.Equal(["cluster/x#1", "cluster/x#2", "cluster/x#3", "cluster/x#0", "cluster/x#1", "cluster/x#2", "cluster/x#3", "cluster/x#0"], keys);
        Assert.Equal(["topic/t#0", "topic/t#1", "topic/t#2", "topic/t#3"], Audience.Topic("t").RendezvousKeys());
        Assert.Equal("topic/t", Audience.Topic("t").ToString());
    }

    [Fact]
    public void The_capacity_a_member_reports_with_a_reply_outweighs_the_listed_one_until_it_is_old()
    {
        // Both registered with the same capacity; one turned out three times slower, and says so with its replies.
        var time = new FakeTimeProvider();
        var directory = Directory(time);
        using (directory.Track("fast"))
        using (directory.Track("slow"))
        {
            directory.Reported("fast", 800);
            directory.Reported("slow", 800.0 / 3);
        }

        Assert.InRange(ShareOfFast(directory), 0.73, 0.77);

        // Renewals carry the member's capacity to the rendezvous meanwhile: an old report no longer stands.
        time.Advance(MemberDirectory.ReportedTime + TimeSpan.FromMilliseconds(1));
        Assert.InRange(ShareOfFast(directory), 0.48, 0.52);
    }

    [Fact]
    public void Requests_in_flight_from_here_discount_a_member_by_their_square()
    {
        var directory = Directory(new FakeTimeProvider());
        var held = new List<MemberDirectory.InFlight> { directory.Track("fast") };

        // Weights 800 / 2² against 800 / 1².
        Assert.InRange(ShareOfFast(directory), 0.18, 0.22);
        held.ForEach(h => h.Dispose());
        Assert.InRange(ShareOfFast(directory), 0.48, 0.52);
    }

    [Fact]
    public void A_member_process_not_asked_for_a_while_is_forgotten()
    {
        var time = new FakeTimeProvider();
        var directory = Directory(time);
        using (directory.Track("fast"))
        using (directory.Track("slow"))
        {
            time.Advance(TimeSpan.FromMinutes(2));
        }

        using (directory.Track("slow"))
        {
            time.Advance(TimeSpan.FromMinutes(2));

            // "slow" has a request in flight: it stays, however long that takes.
            using (directory.Track("other"))
            {
                Assert.Equal(["other", "slow"], directory.Known.Order());
            }
        }
    }

    [Fact]
    public async Task Lookups_that_find_the_list_old_while_it_is_asked_for_share_one_question()
    {
        var time = new FakeTimeProvider();
        var asked = 0;
        var answer = new TaskCompletionSource<MemberEndpoint[]>();
        var directory = new MemberDirectory(_ => { asked++; return answer.Task; }, time, new Random(7));

        // A burst of requests, as under load when the list expires: one question to the rendezvous, not one each.
        var lookups = Enumerable.Range(0, 50).Select(_ => directory.MembersAsync("cluster/x#0").AsTask()).ToArray();
        answer.SetResult([Fast]);
        Assert.All(await Task.WhenAll(lookups), members => Assert.Equal([Fast], members));
        Assert.Equal(1, asked);

        // The answer is kept for its time, then asked for again, once.
        await directory.MembersAsync("cluster/x#0");
        Assert.Equal(1, asked);
        answer = new TaskCompletionSource<MemberEndpoint[]>();
        time.Advance(MemberDirectory.CacheTime);
        lookups = [.. Enumerable.Range(0, 50).Select(_ => directory.MembersAsync("cluster/x#0").AsTask())];
        answer.SetResult([Slow]);
        Assert.All(await Task.WhenAll(lookups), members => Assert.Equal([Slow], members));
        Assert.Equal(2, asked);
    }

    [Fact]
    public async Task A_question_that_failed_or_was_forgotten_is_not_shared_with_later_lookups()
    {
        var asked = 0;
        var answers = new Queue<Task<MemberEndpoint[]>>(
        [
            Task.FromException<MemberEndpoint[]>(new TimeoutException("the rendezvous did not answer")),
            new TaskCompletionSource<MemberEndpoint[]>().Task,
            Task.FromResult<MemberEndpoint[]>([Fast]),
        ]);
        var directory = new MemberDirectory(_ => { asked++; return answers.Dequeue(); }, new FakeTimeProvider(), new Random(7));

        await Assert.ThrowsAsync<TimeoutException>(() => directory.MembersAsync("cluster/x#0").AsTask());

        // The next question hangs; a caller that learned the list is stale forgets it, and the lookup after asks anew.
        var hanging = directory.MembersAsync("cluster/x#0");
        Assert.False(hanging.IsCompleted);
        directory.Forget("cluster/x#0");
        Assert.Equal([Fast], await directory.MembersAsync("cluster/x#0"));
        Assert.Equal(3, asked);
    }

    [Fact]
    public async Task A_rendezvous_that_stops_answering_leaves_lookups_on_the_last_list_until_a_question_gets_through()
    {
        // The rendezvous' silo is cut off (a partition, before Orleans declares it dead): questions to it hang until
        // Orleans' response timeout, half a minute. Requests go on with the last list meanwhile, not waiting with it.
        var time = new FakeTimeProvider();
        var answers = new Queue<TaskCompletionSource<MemberEndpoint[]>>();
        var asked = 0;
        var directory = new MemberDirectory(_ =>
        {
            asked++;
            var answer = new TaskCompletionSource<MemberEndpoint[]>();
            answers.Enqueue(answer);
            return answer.Task;
        }, time, new Random(7));
        const string Key = "cluster/x#0";

        var first = directory.MembersAsync(Key);
        answers.Dequeue().SetResult([Fast, Slow]);
        Assert.Equal([Fast, Slow], await first);

        // The list is old; the question for a new one hangs. The first lookups wait a moment for the answer, then
        // take the last list; lookups after that take it at once.
        time.Advance(MemberDirectory.CacheTime);
        var waiting = directory.MembersAsync(Key);
        Assert.False(waiting.IsCompleted);
        time.Advance(MemberDirectory.SlowAnswer);
        Assert.Equal([Fast, Slow], await waiting);
        var later = directory.MembersAsync(Key);
        Assert.True(later.IsCompletedSuccessfully);
        Assert.Equal([Fast, Slow], await later);
        Assert.Equal(2, asked);

        // A call showed the list stale (a member did not answer): it is asked for anew, and still the fallback while
        // the rendezvous does not answer.
        directory.Forget(Key);
        waiting = directory.MembersAsync(Key);
        Assert.Equal(3, asked);
        time.Advance(MemberDirectory.SlowAnswer);
        Assert.Equal([Fast, Slow], await waiting);

        // A question is given up after AskTimeout, so that one sent later (once Orleans has moved the rendezvous) is
        // answered; its answer is the list from then on.
        time.Advance(MemberDirectory.AskTimeout);
        var next = directory.MembersAsync(Key);
        Assert.Equal(4, asked);
        answers.Last().SetResult([Slow]);
        Assert.Equal([Slow], await next);
        Assert.Equal([Slow], await directory.MembersAsync(Key));

        // A list older than StaleLimit is no fallback: a lookup waits for the answer, or its failure.
        time.Advance(MemberDirectory.StaleLimit);
        waiting = directory.MembersAsync(Key);
        time.Advance(MemberDirectory.AskTimeout);
        await Assert.ThrowsAsync<TimeoutException>(() => waiting.AsTask());
    }

    [Fact]
    public async Task A_question_that_fails_at_once_while_a_list_is_kept_leaves_the_kept_list()
    {
        var time = new FakeTimeProvider();
        var answers = new Queue<Task<MemberEndpoint[]>>(
        [
            Task.FromResult<MemberEndpoint[]>([Fast, Slow]),
            Task.FromException<MemberEndpoint[]>(new SiloUnavailableException("the rendezvous' silo is down")),
            Task.FromException<MemberEndpoint[]>(new InvalidOperationException("the rendezvous failed")),
        ]);
        var directory = new MemberDirectory(_ => answers.Dequeue(), time, new Random(7));
        Assert.Equal([Fast, Slow], await directory.MembersAsync("cluster/x#0"));

        time.Advance(MemberDirectory.CacheTime);
        Assert.Equal([Fast, Slow], await directory.MembersAsync("cluster/x#0"));

        // An error that is the rendezvous' answer, not a lost contact, is not hidden.
        await Assert.ThrowsAsync<InvalidOperationException>(() => directory.MembersAsync("cluster/x#0").AsTask());
    }

    [Fact]
    public void A_member_process_reported_gone_is_passed_over_until_it_serves_or_GoneTime_has_passed_unless_no_other_is_left()
    {
        var time = new FakeTimeProvider();
        var directory = Directory(time);
        MemberEndpoint[] members = [Fast, Slow];
        Assert.Same(members, directory.NotGone(members));

        directory.Gone("slow");
        Assert.Equal([Fast], directory.NotGone(members));

        // Alone, it is asked anyway: it may be back.
        Assert.Equal([Slow], directory.NotGone([Slow]));

        time.Advance(MemberDirectory.GoneTime);
        Assert.Equal(members, directory.NotGone(members));

        // Reported gone again, then it served a request (it reconnected through another gateway).
        directory.Gone("slow");
        Assert.Equal([Fast], directory.NotGone(members));
        directory.Served("slow", "cluster");
        Assert.Equal(members, directory.NotGone(members));
    }

    [Fact]
    public void A_member_that_said_it_is_full_is_passed_over_until_then_and_then_asked_by_one_request_at_a_time()
    {
        var time = new FakeTimeProvider();
        var directory = Directory(time);
        MemberEndpoint[] members = [Fast, Slow];
        Assert.Same(members, directory.NotFull("c", members));

        directory.Full("fast", "c", TimeSpan.FromMilliseconds(25));
        directory.Full("slow", "other", TimeSpan.FromMilliseconds(25));
        Assert.Equal([Slow], directory.NotFull("c", members));

        Assert.False(directory.TryAsk("fast", "c"));
        Assert.True(directory.TryAsk("slow", "c"));

        // Its time passed: it is open again, and a request that chooses another member leaves it open.
        time.Advance(TimeSpan.FromMilliseconds(25));
        Assert.Equal([Fast, Slow], directory.NotFull("c", members));
        Assert.True(directory.TryAsk("slow", "c"));
        Assert.Equal([Fast, Slow], directory.NotFull("c", members));

        // The request that chooses it takes the turn to ask it; the ones after pass it over until that one is answered.
        Assert.True(directory.TryAsk("fast", "c"));
        Assert.False(directory.TryAsk("fast", "c"));
        Assert.Equal([Slow], directory.NotFull("c", members));
        directory.Served("fast", "c");
        Assert.Same(members, directory.NotFull("c", members));
        Assert.True(directory.TryAsk("fast", "c"));

        // Refused again, it is passed over again; a turn that gets no answer lets another ask after the same time.
        directory.Full("fast", "c", TimeSpan.FromMilliseconds(25));
        time.Advance(TimeSpan.FromMilliseconds(25));
        Assert.Equal([Fast, Slow], directory.NotFull("c", members));
        Assert.True(directory.TryAsk("fast", "c"));
        time.Advance(TimeSpan.FromMilliseconds(24));
        Assert.Equal([Slow], directory.NotFull("c", members));
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal([Fast, Slow], directory.NotFull("c", members));
        Assert.True(directory.TryAsk("fast", "c"));

        // A request too large for the member's limit whatever it holds says zero: nothing to wait for.
        directory.Full("slow", "c", TimeSpan.Zero);
        Assert.Contains(Slow, directory.NotFull("c", members));
    }
}
