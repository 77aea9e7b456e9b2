using Orleans.Runtime.Messaging;

namespace Iris.Calls;

/// <summary>
/// How every call between Iris processes is made and judged: requests, broadcasts and publications, tunnel opens and
/// tunnel traffic. It classifies failures (did the call reach its target or not), paces repeats with jittered,
/// growing pauses, and makes the errors a caller sees: a timeout when the target was reachable, an unknown outcome
/// when contact with it was lost.
/// </summary>
internal sealed class CallPolicy(TimeProvider time, Random random, GatewayLoss? gateways = null) : IDisposable
{
    /// <summary>
    /// How long the first copy of a call that carries an id goes unanswered before a second copy, with the same id,
    /// follows it by the same route; the caller takes the first answer of the two. An answer can be lost without any
    /// error: a silo died with the call, or with its answer, on its way through it (the gateway of a client member
    /// whose own connections were not cut). Without a second copy the caller would learn nothing until the response
    /// timeout (<see cref="ReaskAfter"/>), which may be all of its time. The copy joins the run at the member, or gets
    /// its stored answer. Long enough that only calls slower than any ordinary request make one.
    /// </summary>
    public static readonly TimeSpan HedgeAfter = TimeSpan.FromSeconds(1);

    private readonly CoarseClock _clock = new(time);

    /// <summary>Cancelled when the process (an Orleans client) loses a gateway connection: calls sent through it are
    /// asked again at once (<see cref="GatewayLoss"/>). Never cancelled in a silo.</summary>
    public CancellationToken ContactLost => gateways?.Token ?? CancellationToken.None;

    /// <summary>
    /// How long a call that carries an id (a request, a tunnel open) waits for its answer before it is asked again:
    /// the response timeout of those methods. An answer can be lost without any error (a client's gateway died while
    /// the answer was on its way back through it); the repeat joins the run at the target or gets its stored answer.
    /// Orleans tracks that timeout for every call anyway, so it costs no timer of Iris per call.
    /// </summary>
    public static readonly TimeSpan ReaskAfter = TimeSpan.Parse(ReaskAfterText, System.Globalization.CultureInfo.InvariantCulture);

    /// <summary><see cref="ReaskAfter"/> as the methods' <c>[ResponseTimeout]</c> attributes need it: a constant.</summary>
    public const string ReaskAfterText = "00:00:05";

    /// <summary>How long a member host remembers a finished request: its reply is given to a copy that arrives up to
    /// this long after the run finished (see the request ledger).</summary>
    public static readonly TimeSpan RememberFor = TimeSpan.FromSeconds(20);

    /// <summary>
    /// How long a caller goes on repeating a request to one member after the last copy that found it running there
    /// (or after the first copy): past that, the member may have forgotten a run that finished, so a copy could run
    /// it again. The caller then reports the outcome unknown (or, for an idempotent member, tries another). Shorter
    /// than <see cref="RememberFor"/> by twice the response timeout: a copy spends at most that on its way.
    /// </summary>
    public static readonly TimeSpan RepeatWindow = RememberFor - (2 * ReaskAfter);

    /// <summary>Why an Iris process refuses to start with Orleans' <c>DropExpiredMessages</c> off.</summary>
    public const string DropExpiredMessagesRequired =
        "Iris needs Orleans to drop expired messages (MessagingOptions.DropExpiredMessages = true, the default): a request's copies must " +
        "arrive within their response timeout or not at all, or a member that forgot a finished request could run it again.";

    private static readonly TimeSpan FirstPause = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan LongestPause = TimeSpan.FromSeconds(1);

    public TimeProvider Time => time;

    public CallBudget Start(TimeSpan total) => CallBudget.Start(time, total);

    /// <summary>
    /// What <paramref name="error"/> says about whether the call reached its target. A cancellation is the caller's
    /// only when <paramref name="caller"/> (the token the caller gave) was cancelled; any other comes from inside
    /// Orleans (a silo cancelled its lookup of where the target is, because the silo it asked died) and says as little
    /// as a lost connection: the target may have had the call.
    /// </summary>
    public static CallFailure Classify(Exception error, CancellationToken caller = default) => error switch
    {
        TimeoutException => CallFailure.NoAnswer,
        OperationCanceledException => caller.IsCancellationRequested ? CallFailure.Answered : CallFailure.Unreachable,

        // Before the rejection it derives from: a silo that became unavailable may have had the call.
        SiloUnavailableException or ConnectionFailedException => CallFailure.Unreachable,
        ClientNotAvailableException => CallFailure.ProcessGone,
        OrleansMessageRejectionException or GatewayTooBusyException => CallFailure.NotDelivered,
        OrleansException when error.InnerException is { } inner => Classify(inner, caller),
        _ => CallFailure.Answered,
    };

    /// <summary>The pause before repeat <paramref name="attempt"/> (from 1): doubling from 50 ms to 1 s, jittered by ±25%
    /// so that callers that failed together do not repeat together; never past the budget.</summary>
    public TimeSpan Pause(int attempt, CallBudget budget)
    {
        var baseTicks = Math.Min(FirstPause.Ticks << Math.Min(attempt - 1, 10), LongestPause.Ticks);
        var jitter = 0.75 + (random.NextDouble() * 0.5);
        var pause = TimeSpan.FromTicks((long)(baseTicks * jitter));
        return pause < budget.Remaining ? pause : budget.Remaining;
    }

    /// <summary>Waits <see cref="Pause"/> on this process's clock.</summary>
    public Task PauseAsync(int attempt, CallBudget budget, CancellationToken cancellationToken) =>
        Task.Delay(Pause(attempt, budget), time, cancellationToken);

    /// <summary>
    /// Awaits <paramref name="call"/> for at most the budget's remaining time. A call left behind is observed, so its
    /// later failure is not an unobserved exception; the call itself is bounded by its method's response timeout.
    /// </summary>
    public async Task<T> WithinAsync<T>(Task<T> call, CallBudget budget, CancellationToken cancellationToken)
    {
        try
        {
            return await call.WaitAsync(budget.Remaining, time, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (!call.IsCompleted && e is TimeoutException or OperationCanceledException)
        {
            Observe(call);
            throw;
        }
    }

    /// <summary>
    /// As <see cref="WithinAsync{T}(Task{T}, CallBudget, CancellationToken)"/>, and ends with a
    /// <see cref="TimeoutException"/> (no answer: ask again) when <paramref name="contactLost"/> is cancelled first.
    /// </summary>
    public async Task<T> WithinAsync<T>(Task<T> call, CallBudget budget, CancellationToken cancellationToken, CancellationToken contactLost)
    {
        if (!contactLost.CanBeCanceled)
        {
            return await WithinAsync(call, budget, cancellationToken).ConfigureAwait(false);
        }

        using var either = cancellationToken.CanBeCanceled ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, contactLost) : null;
        try
        {
            return await call.WaitAsync(budget.Remaining, time, either?.Token ?? contactLost).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!call.IsCompleted && contactLost.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            Observe(call);
            throw GatewayLost();
        }
        catch (Exception e) when (!call.IsCompleted && e is TimeoutException or OperationCanceledException)
        {
            Observe(call);
            throw;
        }
    }

    /// <summary>
    /// Awaits <paramref name="call"/>, or until <paramref name="contactLost"/> is cancelled (then a
    /// <see cref="TimeoutException"/>: no answer, ask again). No timer: for a call whose own response timeout ends it
    /// well within the caller's time.
    /// </summary>
    public static async Task<T> UntilLostAsync<T>(Task<T> call, CancellationToken contactLost)
    {
        if (!contactLost.CanBeCanceled)
        {
            return await call.ConfigureAwait(false);
        }

        try
        {
            return await call.WaitAsync(contactLost).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (contactLost.IsCancellationRequested)
        {
            // The call may have ended as the loss came: its own outcome then.
            if (call.IsCompleted)
            {
                return await call.ConfigureAwait(false);
            }

            Observe(call);
            throw GatewayLost();
        }
    }

    /// <summary>The latest a second copy follows its first (<see cref="HedgeAfter"/> and two ticks of the clock).</summary>
    public static readonly TimeSpan HedgeLatest = HedgeAfter + (2 * CoarseClock.Resolution);

    /// <summary>
    /// The answer of <paramref name="call"/>, or, when it has none after <see cref="HedgeAfter"/>, the answer of it and
    /// of one copy that <paramref name="again"/> makes then by the same route (see <see cref="HedgeAfter"/>). No copy
    /// is made once the caller no longer waits (<paramref name="wanted"/>), nor for a caller whose time ends first.
    /// Which answer is taken: the first that settles the call (a reply, or an answer from the member that it ran,
    /// runs, or gave up); a refusal that says the copy did not start waits for the other copy, which may have started
    /// the run meanwhile; when both fail, a failure that says the call may have arrived wins over one that says it did
    /// not, so that the caller never takes a request that may have run for one that did not. While it waits, a
    /// cancelled <see cref="HedgeWhile.ContactLost"/> ends it with a <see cref="TimeoutException"/> (no answer: ask
    /// again), as <see cref="UntilLostAsync"/> would, with no wait of its own: the first copy's wait ends at the hedge
    /// time or at the loss, whichever comes first.
    /// </summary>
    public Task<T> HedgedAsync<T>(Task<T> call, Func<Task<T>> again, HedgeWhile wanted) =>
        HedgedAsync(call, static again => again(), again, wanted);

    /// <summary>As <see cref="HedgedAsync{T}(Task{T}, Func{Task{T}}, HedgeWhile)"/>, with the copy made by
    /// <paramref name="again"/> from <paramref name="state"/>: a static function and a struct state cost a call that
    /// makes no copy nothing beyond its wait.</summary>
    public Task<T> HedgedAsync<T, TState>(Task<T> call, Func<TState, Task<T>> again, TState state, HedgeWhile wanted) =>
        call.IsCompleted || wanted.Budget.Remaining <= HedgeLatest
            ? call
            : HedgeAsync(call, again, state, _clock.After(HedgeAfter, wanted.ContactLost), wanted, sameRun: true);

    /// <summary>
    /// As <see cref="HedgedAsync{T}(Task{T}, Func{Task{T}}, HedgeWhile)"/> for a call whose copy goes to another target
    /// (a hand-over to another split's rendezvous), made when <paramref name="call"/> has no answer after
    /// <paramref name="after"/> (at least <see cref="HedgeAfter"/>): a failure of one says nothing of the other, so only
    /// a success settles it, and a <paramref name="call"/> that fails is followed by the copy at once; when both fail,
    /// the failure that lets the caller try again (did not start, may have arrived) wins over one that is final.
    /// </summary>
    public Task HedgedToAnotherAsync(Task call, Func<Task> again, TimeSpan after, HedgeWhile wanted) =>
        call.IsCompleted || wanted.Budget.Remaining <= after + HedgeLatest - HedgeAfter
            ? call
            : HedgeAsync(Completed(call), static again => Completed(again()), again, _clock.After(after, wanted.ContactLost), wanted, sameRun: false);

    // hedge: cancelled at the hedge time, or when wanted.ContactLost is: one wait for both while the first copy is out.
    // sameRun: the copy joins the same run as the call (a request's copy to the same member); else it goes to another
    // target, and only a success settles.
    private static async Task<T> HedgeAsync<T, TState>(
        Task<T> call, Func<TState, Task<T>> again, TState state, CancellationToken hedge, HedgeWhile wanted, bool sameRun)
    {
        try
        {
            return await call.WaitAsync(hedge).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (hedge.IsCancellationRequested)
        {
            if (call.IsCompleted)
            {
                return await call.ConfigureAwait(false);
            }
        }
        catch (Exception) when (!sameRun && call.IsCompleted && !wanted.Caller.IsCancellationRequested && !wanted.ContactLost.IsCancellationRequested && !wanted.Budget.IsExpired)
        {
            // Another target may take what this one failed: its copy at once, not after the hedge time.
            return await CopyAfterFailureAsync(call, again, state, wanted).ConfigureAwait(false);
        }

        if (wanted.ContactLost.IsCancellationRequested)
        {
            // The call's answer may never come: the caller asks again, no copy after it.
            Observe(call);
            throw GatewayLost();
        }

        if (wanted.Caller.IsCancellationRequested || wanted.Budget.IsExpired)
        {
            // The caller has stopped waiting for this call: no copy after it.
            return await UntilLostAsync(call, wanted.ContactLost).ConfigureAwait(false);
        }

        Task<T> copy;
        try
        {
            copy = again(state);
        }
        catch (Exception)
        {
            // No copy could be made (the process is stopping): the first copy's answer stands.
            return await UntilLostAsync(call, wanted.ContactLost).ConfigureAwait(false);
        }

        Diagnostics.IrisMetrics.Repeats.Add(1);
        try
        {
            return await SettleAsync(call, copy, wanted.ContactLost, sameRun).ConfigureAwait(false);
        }
        catch (TimeoutException) when (wanted.ContactLost.IsCancellationRequested && !(call.IsCompleted && copy.IsCompleted))
        {
            Observe(call);
            Observe(copy);
            throw;
        }
    }

    /// <summary>The answer of a copy to another target made once <paramref name="failed"/> failed; when it fails too, the
    /// failure that lets the caller try again wins.</summary>
    private static async Task<T> CopyAfterFailureAsync<T, TState>(Task<T> failed, Func<TState, Task<T>> again, TState state, HedgeWhile wanted)
    {
        Task<T> copy;
        try
        {
            copy = again(state);
        }
        catch (Exception)
        {
            // No copy could be made (the process is stopping): the first failure stands.
            return await failed.ConfigureAwait(false);
        }

        Diagnostics.IrisMetrics.Repeats.Add(1);
        try
        {
            return await UntilLostAsync(copy, wanted.ContactLost).ConfigureAwait(false);
        }
        catch (Exception e) when (!(e is TimeoutException && wanted.ContactLost.IsCancellationRequested && !copy.IsCompleted) && Rank(FailureOf(failed)) < Rank(e))
        {
            return await failed.ConfigureAwait(false);
        }
    }

    /// <summary>The answer of the first of <paramref name="call"/> and <paramref name="copy"/> that settles the call,
    /// or the safer of their failures; ends with a <see cref="TimeoutException"/> when <paramref name="contactLost"/>
    /// is cancelled first.</summary>
    private static async Task<T> SettleAsync<T>(Task<T> call, Task<T> copy, CancellationToken contactLost, bool sameRun)
    {
        var first = await UntilLostAsync(Task.WhenAny(call, copy), contactLost).ConfigureAwait(false);
        var other = first == call ? copy : call;
        if (first.IsCompletedSuccessfully || (sameRun && Settles(first)))
        {
            Observe(other);
            return await first.ConfigureAwait(false);
        }

        try
        {
            await UntilLostAsync(other, contactLost).ConfigureAwait(false);
        }
        catch (TimeoutException) when (contactLost.IsCancellationRequested && !other.IsCompleted)
        {
            throw;
        }
        catch (Exception)
        {
            // Both failed. The same run: the one that tells the caller most safely what may have happened (ties: the
            // later). Two targets: the one that lets the caller try again.
            var (firstRank, otherRank) = (Rank(FailureOf(first)), Rank(FailureOf(other)));
            if (sameRun ? firstRank > otherRank : firstRank < otherRank)
            {
                return await first.ConfigureAwait(false);
            }
        }

        return await other.ConfigureAwait(false);
    }

    /// <summary>Whether a copy's outcome settles the call: a reply, or an answer from the member other than that
    /// this copy did not start there (another copy may have started the run).</summary>
    private static bool Settles(Task call) =>
        call.IsCompletedSuccessfully || Rank(FailureOf(call)) == 2;

    /// <summary>How much a copy's failure says: 2, the member answered (the handler failed, the run goes on, it gave
    /// up or expired); 1, the copy may have arrived (no answer, contact lost); 0, it did not start there (refused
    /// before admission, or not delivered).</summary>
    private static int Rank(Exception failure) => failure switch
    {
        IRefusal { NotStarted: true } => 0,
        _ => Classify(failure) switch
        {
            CallFailure.Answered => 2,
            CallFailure.NoAnswer or CallFailure.Unreachable => 1,
            _ => 0,
        },
    };

    private static TimeoutException GatewayLost() => new("A gateway connection was lost while the call was out; its answer may never come.");

    /// <summary>A call cancelled inside Orleans ends as a cancelled task, with no exception of its own.</summary>
    private static Exception FailureOf(Task failed) => failed.Exception?.GetBaseException() ?? new OperationCanceledException();

    public void Dispose() => _clock.Dispose();

    /// <summary>Observes <paramref name="call"/>'s failure, for a call left behind: its later failure is then no
    /// unobserved exception.</summary>
    public static void Observe(Task call) =>
        _ = call.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);

    /// <inheritdoc cref="WithinAsync{T}(Task{T}, CallBudget, CancellationToken)"/>
    public Task WithinAsync(Task call, CallBudget budget, CancellationToken cancellationToken) =>
        WithinAsync(Completed(call), budget, cancellationToken);

    /// <inheritdoc cref="WithinAsync{T}(Task{T}, CallBudget, CancellationToken, CancellationToken)"/>
    public Task WithinAsync(Task call, CallBudget budget, CancellationToken cancellationToken, CancellationToken contactLost) =>
        WithinAsync(Completed(call), budget, cancellationToken, contactLost);

    private static async Task<bool> Completed(Task call)
    {
        await call.ConfigureAwait(false);
        return true;
    }

    public static IrisTimeoutException Timeout(string name, CallBudget budget) => new(name, budget.Total);

    public static IrisOutcomeUnknownException OutcomeUnknown(string name, Exception cause) =>
        new(name, $"{cause.GetType().Name}: {cause.Message}");
}

/// <summary>While a caller still waits for a call, for <see cref="CallPolicy.HedgedAsync{T}(Task{T}, Func{Task{T}}, HedgeWhile)"/>: its time, its own token, and
/// the gateway-loss token its wait ends with.</summary>
internal readonly record struct HedgeWhile(CallBudget Budget, CancellationToken Caller, CancellationToken ContactLost);
