using Iris.Overlay.Security;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Iris.Security;

/// <summary>Puts <see cref="SecureConnectionMiddleware"/> on an Orleans connection pipeline.</summary>
internal static class SecureConnectionExtensions
{
    public static IConnectionBuilder UseIrisSecurity(this IConnectionBuilder builder, bool initiator)
    {
        var key = builder.ApplicationServices.GetRequiredService<NetworkKeyProvider>().Key;
        var logger = builder.ApplicationServices.GetRequiredService<ILoggerFactory>().CreateLogger("Iris.Security");
        return builder.Use(next => new SecureConnectionMiddleware(next, key, initiator, logger).OnConnectionAsync);
    }
}

/// <summary>The network key of this process, resolved once.</summary>
internal sealed class NetworkKeyProvider(Func<NetworkKey> resolve)
{
    private readonly Lazy<NetworkKey> _key = new(resolve);

    public NetworkKey Key => _key.Value;
}
