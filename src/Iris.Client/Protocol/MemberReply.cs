namespace Iris.Protocol;

/// <summary>What became of a request at a member host.</summary>
internal enum MemberReplyStatus : byte
{
    /// <summary>The handler ran and replied.</summary>
    Replied,

    /// <summary>The handler ran and threw; <see cref="MemberReply.Error"/> has its message.</summary>
    Failed,

    /// <summary>Refused before it started: the member is at its limits. Another member may take it.</summary>
    Overloaded,

    /// <summary>Refused before it started: the process has no member of the cluster (any more). Another may take it.</summary>
    NotHere,

    /// <summary>Not started: the caller's time ran out while it waited for a slot.</summary>
    Expired,

    /// <summary>A copy of a request that is still running there: no reply yet, ask again. The caller learns that the
    /// member holds the request, before its call would end in a response timeout that says nothing.</summary>
    Running,

    /// <summary>The handler ran and gave up when the caller's time ran out (it threw on its cancelled token): the caller
    /// hears a timeout. Unlike <see cref="Expired"/>, it ran: the ledger keeps it, so a repeat does not run it again.</summary>
    GaveUp,
}

/// <summary>A member host's answer to a request.</summary>
[GenerateSerializer]
[Immutable]
internal readonly record struct MemberReply(
    [property: Id(0)] MemberReplyStatus Status, [property: Id(1)] byte[]? Data, [property: Id(2)] string? Error)
{
    /// <summary>With <see cref="MemberReplyStatus.Overloaded"/>: how long the member expects to be full (the time it
    /// takes, on average, to finish one request), during which the caller's process passes it over without asking;
    /// zero when the request could never fit, whatever the member holds.</summary>
    [Id(3)]
    public TimeSpan RetryAfter { get; init; }

    public static MemberReply Refused(MemberReplyStatus status, string? reason = null, TimeSpan retryAfter = default) =>
        new(status, null, reason) { RetryAfter = retryAfter };

    /// <summary>Whether the request never started there, so that another member may take it.</summary>
    public bool NotStarted => Status is MemberReplyStatus.Overloaded or MemberReplyStatus.NotHere;
}
