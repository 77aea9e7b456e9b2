namespace Iris.Members;

/// <summary>
/// A handler that passes requests on to someone else (a relay connection's application) and must tell it how long the
/// caller still waits: the member gives it the time left of the request's budget, on this process's clock, when the
/// handler starts. The token passed with it is cancelled when that time is up, as for any handler.
/// </summary>
internal interface ITimedClusterHandler : IClusterHandler
{
    /// <summary>Handles a request that the caller waits for <paramref name="remaining"/> more.</summary>
    Task<byte[]> HandleRequestAsync(byte[] request, TimeSpan remaining, CancellationToken cancellationToken);
}
