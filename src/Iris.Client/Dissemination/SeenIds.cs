using Iris.Calls;
using Iris.Protocol;

namespace Iris.Dissemination;

/// <summary>How each hop of a dissemination drops the messages it has seen: the rendezvous, every tree hop, every
/// member process.</summary>
internal static class SeenIds
{
    /// <summary>The messages whose ids <paramref name="seen"/> did not hold, now added to it, in their order: the same
    /// array when all are new.</summary>
    public static Disseminated[] Fresh(this RecentIds seen, Disseminated[] messages)
    {
        List<Disseminated>? fresh = null;
        using var batch = seen.Open();
        for (var i = 0; i < messages.Length; i++)
        {
            if (batch.Add(messages[i].Id))
            {
                fresh?.Add(messages[i]);
            }
            else
            {
                fresh ??= [.. messages.AsSpan(0, i)];
            }
        }

        return fresh is null ? messages : [.. fresh];
    }
}
