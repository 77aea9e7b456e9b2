using System.Diagnostics;
using Iris.Calls;
using Iris.Protocol;

namespace Iris.Dissemination;

/// <summary>
/// Carries a broadcast or publication down a tree over the receiving processes, each hop an Orleans call: the
/// sender calls at most <see cref="FanOut"/> member silos, each with the share of the rest it must pass on, and
/// every silo does the same with its share after delivering to its own members. Orleans clients are leaves (they
/// deliver, never forward). A hop that fails (its silo died, its client left) is taken over by its parent, which
/// sends to the failed hop's share itself, and tries the failed hop again for a while (<see cref="Persistence"/>), so
/// a process that is only reconnecting through another gateway still gets the message; receivers drop a message id
/// they have seen, so neither the takeover nor a repeat delivers twice. A try to a client that stays unanswered for
/// <see cref="ClientTry"/> is left and made again. Depth grows with log4 of the receiving
/// processes, and no silo sends more than four copies.
/// </summary>
// Runs in grain code: no ConfigureAwait(false), so hops are made in the calling grain's context.
internal static class Disseminator
{
    public const int FanOut = 4;

    /// <summary>How long a hop keeps trying a receiver that did not take a message: as long as a rendezvous keeps a
    /// client that stopped renewing (15 s), so a process that is only reconnecting through another gateway is
    /// reached, well inside the time receivers remember message ids (so a late copy is still dropped).</summary>
    public static readonly TimeSpan Persistence = TimeSpan.FromSeconds(15);

    /// <summary>
    /// How long one try to a client waits for its answer before the next try. A client only delivers (it never passes a
    /// share on), so it answers at once when reached. But a gateway that queued the call for the client while the
    /// client was reconnecting, and then lost that connection, never answers it: Orleans gives up on such a call only
    /// after its response timeout (30 s), past the persistence, and the client, back by then, would never be tried again.
    /// </summary>
    public static readonly TimeSpan ClientTry = CallPolicy.ReaskAfter;

    /// <summary>Sends to every target: <paramref name="send"/> delivers to one target and hands it its share. Never
    /// fails: a receiver given up on is reported to <paramref name="undelivered"/> with the last error.</summary>
    public static Task SendAsync(MemberEndpoint[] targets, Func<MemberEndpoint, MemberEndpoint[], Task> send, Action<MemberEndpoint, Exception>? undelivered = null) =>
        SendAsync(targets, send, Persistence, undelivered);

    /// <summary>As <see cref="SendAsync(MemberEndpoint[], Func{MemberEndpoint, MemberEndpoint[], Task}, Action{MemberEndpoint, Exception}?)"/>,
    /// trying a receiver that did not take the message for <paramref name="persistence"/>, each try to a client for at
    /// most <paramref name="clientTry"/> (<see cref="ClientTry"/> when not given).</summary>
    internal static Task SendAsync(
        MemberEndpoint[] targets,
        Func<MemberEndpoint, MemberEndpoint[], Task> send,
        TimeSpan persistence,
        Action<MemberEndpoint, Exception>? undelivered = null,
        TimeSpan? clientTry = null) =>
        SendAsync(targets, new Hop(send, persistence, clientTry ?? ClientTry, undelivered));

    private static Task SendAsync(MemberEndpoint[] targets, Hop hop)
    {
        if (targets.Length == 0)
        {
            return Task.CompletedTask;
        }

        var silos = targets.Where(t => t.Observer is null).ToArray();
        if (silos.Length == 0)
        {
            // Only clients: each one directly.
            return Task.WhenAll(targets.Select(t => HopAsync(t, [], hop)));
        }

        // Heads are silos; everything else, silos first, is dealt round robin into their shares, so shares differ in
        // size by at most one and clients spread evenly over the forwarding silos.
        var heads = silos.Take(FanOut).ToArray();
        var shares = heads.Select(_ => new List<MemberEndpoint>()).ToArray();
        var rest = silos.Skip(heads.Length).Concat(targets.Where(t => t.Observer is not null));
        var i = 0;
        foreach (var target in rest)
        {
            shares[i++ % heads.Length].Add(target);
        }

        return Task.WhenAll(heads.Select((head, index) => HopAsync(head, [.. shares[index]], hop)));
    }

    private static async Task HopAsync(MemberEndpoint target, MemberEndpoint[] share, Hop hop)
    {
        var started = Stopwatch.GetTimestamp();
        Exception error;
        try
        {
            await hop.TryAsync(target, share);
            return;
        }
        catch (Exception e)
        {
            error = e;
        }

        // The hop may have died before passing its share on, or part way through, or answered with an error of its own
        // (it may have delivered, and not passed its share on): the share goes from here (receivers drop what they
        // already have), while the target itself may be tried again, alone.
        var failure = CallPolicy.Classify(error);
        var again = failure != CallFailure.Answered && MayComeBack(target, failure)
            ? RetryAsync(target, hop, started, error)
            : Report(target, error, hop.Undelivered);
        await Task.WhenAll(SendAsync(share, hop), again);
    }

    private static Task Report(MemberEndpoint target, Exception error, Action<MemberEndpoint, Exception>? undelivered)
    {
        undelivered?.Invoke(target, error);
        return Task.CompletedTask;
    }

    /// <summary>
    /// Whether a receiver that did not take a message may still take it. A silo that Orleans reports unreachable is
    /// dead or dying, and its members with it. A client may only be between gateways (its gateway silo died and it is
    /// reconnecting through another, which Orleans reports as the client, or its gateway, being unavailable); and any
    /// receiver that did not answer in time, or refused the call before delivery, may take it a moment later.
    /// </summary>
    private static bool MayComeBack(MemberEndpoint target, CallFailure failure) => target.Observer is not null || failure != CallFailure.Unreachable;

    /// <summary>
    /// Tries a receiver that did not take a message again, with growing pauses, for the hop's persistence
    /// from the first try; one that stays unreachable that long is gone, with no members left to deliver to.
    /// </summary>
    private static async Task RetryAsync(MemberEndpoint target, Hop hop, long started, Exception error)
    {
        for (var attempt = 1; Stopwatch.GetElapsedTime(started) < hop.Persistence; attempt++)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(100 << Math.Min(attempt, 5), 2000)));
            try
            {
                await hop.TryAsync(target, []);
                return;
            }
            catch (Exception e)
            {
                error = e;
                var failure = CallPolicy.Classify(e);
                if (failure == CallFailure.Answered || !MayComeBack(target, failure))
                {
                    // It answered with an error of its own, or its silo is gone now.
                    break;
                }
            }
        }

        hop.Undelivered?.Invoke(target, error);
    }

    /// <summary>How one message goes to each receiver: the call, how long a receiver is tried, and who hears of one
    /// given up on.</summary>
    private sealed record Hop(
        Func<MemberEndpoint, MemberEndpoint[], Task> Send, TimeSpan Persistence, TimeSpan ClientTry, Action<MemberEndpoint, Exception>? Undelivered)
    {
        /// <summary>One try: the call to a silo as long as it takes (a silo that died fails it when Orleans declares it
        /// dead, and a live one answers once its share is passed on); the call to a client for at most
        /// <see cref="ClientTry"/>, after which it fails with a <see cref="TimeoutException"/> (a try left behind is
        /// observed, and a late delivery of it is dropped by the client as seen).</summary>
        public Task TryAsync(MemberEndpoint target, MemberEndpoint[] share)
        {
            var call = Send(target, share);
            return target.Observer is null || call.IsCompleted ? call : WithinAsync(call, target);
        }

        private async Task WithinAsync(Task call, MemberEndpoint target)
        {
            try
            {
                await call.WaitAsync(ClientTry);
            }
            catch (TimeoutException) when (!call.IsCompleted)
            {
                _ = call.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
                throw new TimeoutException($"Member process {target.Id} did not answer a delivery within {ClientTry.TotalSeconds:0.#} s (its gateway may have lost the call while the process reconnected).");
            }
        }
    }
}
