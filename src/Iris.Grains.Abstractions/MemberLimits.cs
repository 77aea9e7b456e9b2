namespace Iris;

/// <summary>How much work one member takes at once. Requests beyond the limits wait (up to their deadline) or are
/// refused with <see cref="IrisOverloadedException"/>.</summary>
[GenerateSerializer]
public sealed record MemberLimits
{
    /// <summary>Requests a member handles concurrently. Default: 4 × the processor count, as in the original Iris.</summary>
    [Id(0)]
    public int MaxConcurrentRequests { get; init; } = 4 * Environment.ProcessorCount;

    /// <summary>Bytes of requests a member holds queued before it refuses more. Default 64 MiB.</summary>
    [Id(1)]
    public long MaxQueuedBytes { get; init; } = 64L * 1024 * 1024;
}
