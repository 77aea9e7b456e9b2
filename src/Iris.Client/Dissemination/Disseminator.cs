using Iris.Calls;
using Iris.Protocol;

namespace Iris.Dissemination;

/// <summary>
/// Carries a broadcast or publication down a tree over the receiving processes, each hop an Orleans call: the
/// sender calls at most <see cref="FanOut"/> member silos, each with the share of the rest it must pass on, and
/// every silo does the same with its share after delivering to its own members. Orleans clients are leaves (they
/// deliver, never forward). A hop that fails (its silo died, its client left) is taken over by its parent, which
/// sends to the failed hop's share itself; receivers drop a message id they have seen, so the takeover never
/// delivers twice. Depth grows with log4 of the receiving processes, and no silo sends more than four copies.
/// </summary>
// Runs in grain code: no ConfigureAwait(false), so hops are made in the calling grain's context.
internal static class Disseminator
{
    public const int FanOut = 4;

    /// <summary>Sends to every target: <paramref name="send"/> delivers to one target and hands it its share.</summary>
    public static Task SendAsync(MemberEndpoint[] targets, Func<MemberEndpoint, MemberEndpoint[], Task> send)
    {
        if (targets.Length == 0)
        {
            return Task.CompletedTask;
        }

        var silos = targets.Where(t => t.Observer is null).ToArray();
        if (silos.Length == 0)
        {
            // Only clients: each one directly.
            return Task.WhenAll(targets.Select(t => HopAsync(t, [], send)));
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

        return Task.WhenAll(heads.Select((head, index) => HopAsync(head, [.. shares[index]], send)));
    }

    private static async Task HopAsync(MemberEndpoint target, MemberEndpoint[] share, Func<MemberEndpoint, MemberEndpoint[], Task> send)
    {
        try
        {
            await send(target, share);
        }
        catch (Exception) when (share.Length > 0)
        {
            // The hop may have died before passing its share on, or part way through: send to the share from here
            // (receivers drop what they already have).
            await SendAsync(share, send);
        }
        catch (Exception e) when (target.Observer is not null && CallPolicy.Classify(e) is CallFailure.Unreachable or CallFailure.NoAnswer)
        {
            // A client that could not be reached (its gateway went away, an answer was lost): once more, through
            // whichever gateway it has now, with the same id, which it delivers once.
            try
            {
                await send(target, share);
            }
            catch (Exception again) when (CallPolicy.Classify(again) != CallFailure.Answered)
            {
                // Gone: it has no members left to deliver to.
            }
        }
        catch (Exception e) when (CallPolicy.Classify(e) != CallFailure.Answered)
        {
            // A leaf whose process is gone: it has no members left to deliver to.
        }
    }
}
