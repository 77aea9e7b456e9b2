namespace Iris.Tunnels;

/// <summary>Why a tunnel end (or one of its halves) ended: set once, the first reason stands. Kept under its
/// owner's lock.</summary>
internal struct TunnelEnding
{
    public TunnelCloseReason? Reason { readonly get; private set; }

    public string? Detail { readonly get; private set; }

    /// <summary>Records the end; false when it had ended already.</summary>
    public bool TrySet(TunnelCloseReason reason, string? detail)
    {
        if (Reason is not null)
        {
            return false;
        }

        Reason = reason;
        Detail = detail;
        return true;
    }

    /// <summary>Throws <see cref="TunnelClosedException"/> with the reason, once ended.</summary>
    public readonly void ThrowIfEnded(string cluster)
    {
        if (Reason is { } reason)
        {
            throw new TunnelClosedException(cluster, reason, Detail);
        }
    }
}
