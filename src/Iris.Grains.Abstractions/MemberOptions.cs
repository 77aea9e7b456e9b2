namespace Iris;

/// <summary>How a member takes part in its cluster: its limits, and whether its requests may be run again elsewhere.</summary>
[GenerateSerializer]
public sealed record MemberOptions
{
    /// <summary>How much work the member takes at once.</summary>
    [Id(0)]
    public MemberLimits Limits { get; init; } = new();

    /// <summary>
    /// Whether running a request twice does no harm. When true and the member's process dies or cannot be reached
    /// while it has a request, the request is sent to another member with the same id instead of failing with
    /// <see cref="IrisOutcomeUnknownException"/>. Default false: a request runs at most once.
    /// </summary>
    [Id(1)]
    public bool Idempotent { get; init; }
}
