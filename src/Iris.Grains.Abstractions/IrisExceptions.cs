namespace Iris;

/// <summary>Base of the errors Iris raises; each names the cluster or topic concerned.</summary>
[GenerateSerializer]
public abstract class IrisException : Exception
{
    /// <summary>Creates the exception.</summary>
    protected IrisException(string message, string name)
        : base(message)
    {
        Name = name;
    }

    /// <summary>Creates the exception with its cause.</summary>
    protected IrisException(string message, string name, Exception innerException)
        : base(message, innerException)
    {
        Name = name;
    }

    /// <summary>The cluster or topic the operation was for.</summary>
    [Id(0)]
    public string Name { get; }
}

/// <summary>No reply came within the timeout the caller gave, from a member that was reachable. The request may still
/// have run on a member.</summary>
[GenerateSerializer]
public sealed class IrisTimeoutException : IrisException
{
    /// <summary>Creates the exception.</summary>
    public IrisTimeoutException(string cluster, TimeSpan timeout)
        : base($"No reply from cluster '{cluster}' within {timeout}. The request may still have run; retry only if it is idempotent, or give it more time.", cluster)
    {
        Timeout = timeout;
    }

    /// <summary>The timeout that passed.</summary>
    [Id(0)]
    public TimeSpan Timeout { get; }
}

/// <summary>The cluster has no member to take the request: nobody registered under that name, or all left.</summary>
[GenerateSerializer]
public sealed class NoMembersException : IrisException
{
    /// <summary>Creates the exception.</summary>
    public NoMembersException(string cluster)
        : base($"Cluster '{cluster}' has no members. Check the cluster name, and that its service is running and registered with IIrisClient.RegisterAsync or AddIrisMember.", cluster)
    {
    }
}

/// <summary>The member's handler threw; the message is the handler's own.</summary>
[GenerateSerializer]
public sealed class RemoteException : IrisException
{
    /// <summary>Creates the exception.</summary>
    public RemoteException(string cluster, string remoteMessage)
        : base($"A member of cluster '{cluster}' failed the request: {remoteMessage}", cluster)
    {
        RemoteMessage = remoteMessage;
    }

    /// <summary>What the handler's exception said.</summary>
    [Id(0)]
    public string RemoteMessage { get; }
}

/// <summary>Every member that could take the request is at its <see cref="MemberLimits"/>; try again later or add
/// members.</summary>
[GenerateSerializer]
public sealed class IrisOverloadedException : IrisException
{
    /// <summary>Creates the exception.</summary>
    public IrisOverloadedException(string cluster, string reason)
        : base($"Cluster '{cluster}' is overloaded: {reason}. Retry later, send smaller requests, or add members.", cluster)
    {
    }
}

/// <summary>
/// The caller lost contact with the member's process while the request may have been there: the process died, or
/// could not be reached again before the timeout. The request ran at most once, but whether it ran is not known.
/// Requests are not sent again elsewhere in this case unless the member registered its handler as idempotent
/// (<see cref="MemberOptions.Idempotent"/>).
/// </summary>
[GenerateSerializer]
public sealed class IrisOutcomeUnknownException : IrisException
{
    /// <summary>Creates the exception.</summary>
    public IrisOutcomeUnknownException(string cluster, string detail)
        : base($"The member of cluster '{cluster}' that took the request could not be reached again ({detail}); the request ran at most once, but whether it ran is unknown. Check before retrying unless the operation is idempotent, or register the handler with MemberOptions.Idempotent to let Iris retry it on another member.", cluster)
    {
        Detail = detail;
    }

    /// <summary>What happened to the member's process or the connection to it.</summary>
    [Id(0)]
    public string Detail { get; }
}
