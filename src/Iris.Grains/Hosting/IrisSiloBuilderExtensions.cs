using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Orleans.Runtime;

namespace Iris.Hosting;

/// <summary>Adds Iris to an Orleans silo.</summary>
public static class IrisSiloBuilderExtensions
{
    /// <summary>
    /// Adds Iris to the silo: its overlay node (network key, secure transport, discovery or seeds; see
    /// <c>OverlayHostedService</c>), and for now an Orleans cluster on localhost on the ports of
    /// <see cref="IrisSiloOptions"/>, until the overlay takes over Orleans membership.
    /// </summary>
    public static ISiloBuilder UseIris(this ISiloBuilder builder, IrisSiloOptions options)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(options);
        var validation = new IrisSiloOptionsValidator().Validate(null, options);
        if (validation.Failed)
        {
            throw new OptionsValidationException(nameof(IrisSiloOptions), typeof(IrisSiloOptions), validation.Failures);
        }

        builder.UseLocalhostClustering(options.SiloPort, options.GatewayPort, null, options.ServiceId, options.ClusterId);
        builder.Services.AddSingleton(Options.Create(options));
        builder.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>, SiloEndpointLogger>();
        builder.Services.AddSingleton<OverlayHostedService>();
        builder.Services.AddHostedService(services => services.GetRequiredService<OverlayHostedService>());
        return builder;
    }
}
