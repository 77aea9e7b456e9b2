using System.Net.Sockets;
using Iris.Hosting;
using Iris.Ring;
using Iris.Security;
using Iris.Overlay.Security;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

// An Iris node: one Orleans silo with its overlay node. Settings come from appsettings.json, environment variables
// (Iris__Silo__SiloPort=11112) and the command line (--Iris:Silo:SiloPort=11112). `dotnet run` starts it in
// development (see Properties/launchSettings.json): loopback only, the user's development network key, discovery of
// other nodes on this machine, and free ports picked where the defaults are taken. Ctrl-C stops it cleanly.
// appsettings.json is read next to the program, wherever it is started from.
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });
var configured = builder.Configuration.GetSection(IrisSiloOptions.SectionName).Get<IrisSiloOptions>() ?? new IrisSiloOptions();
var development = builder.Environment.IsDevelopment();
System.Net.IPAddress? address = null;
try
{
    // Settings are checked before anything starts: a mistake stops the silo with what to fix, not a stack trace.
    builder.Services.AddSingleton(NetworkKeys.Resolve(builder.Configuration, builder.Environment.IsDevelopment()));
    OverlayLifecycle.Bind(builder.Configuration);
    if (new IrisSiloOptionsValidator().Validate(null, configured) is { Failed: true } invalid)
    {
        throw new OptionsValidationException(IrisSiloOptions.SectionName, typeof(IrisSiloOptions), invalid.Failures);
    }

    // In development a port other than the default was asked for: use it or fail. The default moves aside for a
    // second silo. Everything else comes from configuration (Iris:Silo) and is checked when the silo starts.
    var (siloPort, gatewayPort) = (configured.SiloPort, configured.GatewayPort);
    if (development)
    {
        address = SiloEndpointAddress.For(configured, builder.Configuration, development);
        siloPort = PortPicker.Choose(address, siloPort, explicitlySet: siloPort != IrisSiloOptions.DefaultSiloPort);
        gatewayPort = PortPicker.Choose(address, gatewayPort, explicitlySet: gatewayPort != IrisSiloOptions.DefaultGatewayPort);
    }

    builder.UseOrleans(silo => silo.UseIris(options =>
    {
        options.SiloPort = siloPort;
        options.GatewayPort = gatewayPort;
    }));
}
catch (Exception e) when (e is NetworkKeyException or OptionsValidationException or FormatException)
{
    await Console.Error.WriteLineAsync($"Iris silo cannot start: {e.Message}");
    return 1;
}
catch (SocketException e)
{
    return await CannotListenAsync(address, e);
}

using var host = builder.Build();
var logger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Iris.Silo");
try
{
    await host.StartAsync();
}
catch (OptionsValidationException e)
{
    await Console.Error.WriteLineAsync($"Iris silo cannot start: {e.Message}");
    return 1;
}
catch (SocketException e)
{
    return await CannotListenAsync(host.Services.GetRequiredService<IOptions<Orleans.Configuration.EndpointOptions>>().Value.AdvertisedIPAddress, e);
}

await host.WaitForShutdownAsync();
logger.LogInformation("Iris silo stopped");
return 0;

static async Task<int> CannotListenAsync(System.Net.IPAddress? address, SocketException e)
{
    await Console.Error.WriteLineAsync(
        $"Iris silo cannot start: it cannot listen on {address}: {e.Message}. {IrisSiloOptions.AddressSetting} (by default the overlay's address) must be an address of this machine, and its ports free.");
    return 1;
}
