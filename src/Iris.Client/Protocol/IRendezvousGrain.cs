namespace Iris.Protocol;

/// <summary>Where one split of a cluster's (or topic's) member processes are known: key
/// <see cref="Audience.RendezvousKey"/>.</summary>
internal interface IRendezvousGrain : IGrainWithStringKey
{
    /// <summary>Adds or refreshes a member entry. Entries are refreshed regularly; one that stops is forgotten.</summary>
    Task Register(MemberEndpoint member);

    Task Unregister(string id);

    Task<MemberEndpoint[]> GetMembers();

    /// <summary>Accepts <paramref name="messages"/> (one or more, as their sender batched them) for the members of
    /// <paramref name="audience"/> and returns: they then go down the name's Scribe tree from here together, and
    /// directly to members the tree did not reach. An id accepted before is accepted again and not sent twice.</summary>
    Task Disseminate(Audience audience, Disseminated[] messages);

    /// <summary>Diagnostics: the silo this activation runs on.</summary>
    Task<SiloAddress> GetSilo();
}
