using Iris.Balancing;
using Iris.Calls;
using Iris.Diagnostics;
using Iris.Protocol;

namespace Iris.Dissemination;

/// <summary>
/// The first hop of a broadcast or publication, from any process: it gives the message its id, once, and hands it to
/// one of the name's rendezvous grains, which accepts it and returns before any handler runs. A call whose answer was
/// lost is made again with the same id (to the next split's rendezvous if the first one is moving), so no member gets
/// the message twice: member processes deliver an id once.
/// </summary>
internal sealed class DisseminationSender(MemberDirectory directory, IGrainFactory grains, CallPolicy policy)
{
    /// <summary>How long a sender keeps trying to hand a message over before it gives up.</summary>
    public static readonly TimeSpan HandOverTime = TimeSpan.FromSeconds(30);

    public async Task SendAsync(Audience audience, byte[] message, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(audience.Name);
        ArgumentNullException.ThrowIfNull(message);
        (audience.Kind == AudienceKind.Cluster ? IrisMetrics.Broadcasts : IrisMetrics.Publications).Add(1);
        IrisMetrics.Bytes.Add(message.Length, audience.Kind == AudienceKind.Cluster ? IrisMetrics.BroadcastDirection : IrisMetrics.PublicationDirection);
        var id = CallIds.Next();
        var budget = policy.Start(HandOverTime);
        for (var attempt = 1; ; attempt++)
        {
            var rendezvous = grains.GetGrain<IRendezvousGrain>(directory.NextKey(audience));
            try
            {
                await policy.WithinAsync(rendezvous.Disseminate(audience, message, id), budget, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (TimeoutException) when (budget.IsExpired)
            {
                throw CallPolicy.Timeout(audience.Name, budget);
            }
            catch (Exception e) when (CallPolicy.Classify(e, cancellationToken) != CallFailure.Answered)
            {
                // Past the hand-over time, a rendezvous that stayed unreachable is a timeout, never Orleans' own error.
                if (budget.IsExpired)
                {
                    throw CallPolicy.Timeout(audience.Name, budget);
                }

                IrisMetrics.Repeats.Add(1);
                await policy.PauseAsync(attempt, budget, cancellationToken).ConfigureAwait(false);
            }
        }
    }
}
