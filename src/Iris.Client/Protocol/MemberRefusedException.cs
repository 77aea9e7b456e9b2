namespace Iris.Protocol;

/// <summary>
/// A member host's answer that a request (or a tunnel open) did not start there (<see cref="MemberReply.NotStarted"/>, or it expired
/// waiting for a slot), or that a copy of it is still running there (<see cref="MemberReplyStatus.Running"/>). An exception on the wire, not a reply: the reply of a request is its bytes alone, the shape
/// Orleans carries cheapest, and refusals are rare.
/// </summary>
[GenerateSerializer]
internal sealed class MemberRefusedException : OrleansException, Calls.IRefusal
{
    public MemberRefusedException(MemberReplyStatus status, string? reason)
        : base(status == MemberReplyStatus.Running
            ? "The member is still running the request; ask again."
            : $"The member refused the request before it started: {status}{(reason is null ? string.Empty : $" ({reason})")}.")
    {
        Status = status;
        Reason = reason;
    }

    [Id(0)]
    public MemberReplyStatus Status { get; }

    [Id(1)]
    public string? Reason { get; }

    /// <summary>With <see cref="MemberReplyStatus.Overloaded"/>: how long the member expects to stay full (see
    /// <see cref="MemberReply.RetryAfter"/>).</summary>
    [Id(2)]
    public TimeSpan RetryAfter { get; init; }

    /// <summary>Whether another member may take the request: it was refused before it started, not left to expire.</summary>
    public bool NotStarted => Status is MemberReplyStatus.Overloaded or MemberReplyStatus.NotHere;
}
