namespace Iris.Overlay;

/// <summary>
/// A payload handed to the overlay is larger than one overlay message may carry. Nothing was sent. Send large data
/// in pieces, or through a tunnel, which streams it; or raise <c>Iris:Overlay:Tcp:MaxFrameSize</c> on every node.
/// </summary>
public sealed class OverlayMessageTooLargeException : ArgumentException
{
    /// <summary>Creates the exception for a payload of <paramref name="size"/> bytes against a limit of
    /// <paramref name="limit"/>.</summary>
    public OverlayMessageTooLargeException(long size, long limit)
        : base($"An overlay payload of {size} bytes exceeds the limit of {limit} bytes: nothing was sent. Send it in pieces or through a tunnel, "
            + "or raise Iris:Overlay:Tcp:MaxFrameSize on every node.")
    {
        Size = size;
        Limit = limit;
    }

    /// <summary>The payload's size in bytes.</summary>
    public long Size { get; }

    /// <summary>The largest payload allowed, in bytes.</summary>
    public long Limit { get; }
}
