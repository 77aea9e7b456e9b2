using System.Net.Sockets;
using Iris.Hosting;
using Iris.Overlay.Security;
using Iris.Relay;
using Iris.Relay.Hosting;
using Iris.Ring;
using Iris.Security;
using Iris.Silo;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Dashboard;

// An Iris node: one Orleans silo with its overlay node. Settings come from appsettings.json, environment variables
// (Iris__Silo__SiloPort=11112) and the command line (--Iris:Silo:SiloPort=11112). `dotnet run` starts it in
// development (see Properties/launchSettings.json): loopback only, the user's development network key, discovery of
// other nodes on this machine, and free ports picked where the defaults are taken. Ctrl-C stops it cleanly.
// appsettings.json is read next to the program, wherever it is started from.
//
// A silo that its cluster declared dead (cut off from the majority by a partition while the others went on, or
// stalled for longer than failure detection takes) can never come back as the same silo. In production the program
// then exits with ExitCodes.DeclaredDead (3), and its supervisor (systemd, Kubernetes) starts it again: a new silo.
// In development, with no supervisor, it starts the new silo itself, in this process.
for (var restarts = 0; ; restarts++)
{
    if (await RunSiloAsync(args, restarts) is { } exitCode)
    {
        return exitCode;
    }
}

// Runs one silo until its host stops: the process's exit code, or null to start a new silo in this process.
static async Task<int?> RunSiloAsync(string[] args, int restarts)
{
    // How long a silo declared dead may take over its graceful stop, and how long it may take at all.
    var deadSiloGrace = TimeSpan.FromSeconds(5);
    var deadSiloStopLimit = TimeSpan.FromSeconds(60);

    // Configuration as the host reads it (appsettings.json next to the program, environment, command line): the
    // settings are checked, and the ports chosen, before anything starts.
    var settings = new HostApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });
    var configuration = settings.Configuration;
    var configured = configuration.GetSection(IrisSiloOptions.SectionName).Get<IrisSiloOptions>() ?? new IrisSiloOptions();
    var http = configuration.GetSection(IrisHttpOptions.SectionName).Get<IrisHttpOptions>() ?? new IrisHttpOptions();
    var telemetry = configuration.GetSection(IrisTelemetryOptions.SectionName).Get<IrisTelemetryOptions>() ?? new IrisTelemetryOptions();
    var development = settings.Environment.IsDevelopment();
    System.Net.IPAddress? address = null;
    IHost host;
    try
    {
        // Settings are checked before anything starts: a mistake stops the silo with what to fix, not a stack trace.
        var key = NetworkKeys.Resolve(configuration, development);
        OverlayLifecycle.Bind(configuration);
        if (new IrisSiloOptionsValidator().Validate(null, configured) is { Failed: true } invalid)
        {
            throw new OptionsValidationException(IrisSiloOptions.SectionName, typeof(IrisSiloOptions), invalid.Failures);
        }

        if (http.Problems() is { Count: > 0 } problems)
        {
            throw new OptionsValidationException(IrisHttpOptions.SectionName, typeof(IrisHttpOptions), problems);
        }

        if (telemetry.Problems(configuration) is { Count: > 0 } telemetryProblems)
        {
            throw new OptionsValidationException(IrisTelemetryOptions.SectionName, typeof(IrisTelemetryOptions), telemetryProblems);
        }

        // In development a port other than the default was asked for: use it or fail. The default moves aside for a
        // second silo. Everything else comes from configuration (Iris:Silo) and is checked when the silo starts.
        var (siloPort, gatewayPort) = (configured.SiloPort, configured.GatewayPort);
        if (development)
        {
            address = SiloEndpointAddress.For(configured, configuration, development);
            siloPort = PortPicker.Choose(address, siloPort, explicitlySet: siloPort != IrisSiloOptions.DefaultSiloPort);
            gatewayPort = PortPicker.Choose(address, gatewayPort, explicitlySet: gatewayPort != IrisSiloOptions.DefaultGatewayPort);
        }

        var builder = Host.CreateDefaultBuilder(args).UseContentRoot(AppContext.BaseDirectory);
        if (http.Enabled)
        {
            // Before the silo: the endpoint answers while the silo starts (live, not ready) and while it stops (not ready).
            var httpAddress = System.Net.IPAddress.Parse(http.Address);
            var httpPort = PortPicker.Choose(httpAddress, http.Port ?? IrisHttpOptions.DefaultPort, explicitlySet: http.Port is not null);
            builder.ConfigureWebHost(web => web.UseIrisHttp(httpAddress, httpPort, http.Dashboard));
        }

        if (telemetry.Endpoint(configuration) is { } otlp)
        {
            builder.ConfigureServices(services => services.AddIrisTelemetry(telemetry, configuration, otlp));
        }

        builder
            .ConfigureServices(services => services.AddSingleton(key))
            .UseOrleans(silo =>
            {
                silo.UseIris(options =>
                    {
                        options.SiloPort = siloPort;
                        options.GatewayPort = gatewayPort;
                    })
                    .StopWhenDeclaredDead();
                if (http is { Enabled: true, Dashboard: true })
                {
                    silo.AddDashboard();
                }

                if (telemetry.Endpoint(configuration) is not null)
                {
                    // Spans of one request or tunnel join one trace across processes through Orleans' own spans.
                    silo.AddActivityPropagation();
                }
            })

            // After the silo: the relay endpoint opens once the silo runs, and closes (its members leaving) before it stops.
            .ConfigureServices(services => services.AddIrisRelay());
        host = builder.Build();
    }
    catch (Exception e) when (e is NetworkKeyException or OptionsValidationException or FormatException)
    {
        await Console.Error.WriteLineAsync($"Iris silo cannot start: {e.Message}");
        return ExitCodes.CannotStart;
    }
    catch (SocketException e)
    {
        return await CannotListenAsync(address, e);
    }

    using var _ = host;
    var logger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Iris.Silo");
    var lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
    try
    {
        await host.StartAsync();
    }
    catch (Exception e) when (lifetime.ApplicationStopping.IsCancellationRequested && e is OperationCanceledException or Orleans.Runtime.OrleansLifecycleCanceledException)
    {
        // Asked to stop (Ctrl-C, SIGTERM) before the silo finished starting: the host cancelled the start midway. That
        // is a stop on request, so stop what did start, and exit as any stop on request does. Orleans refuses to stop a
        // silo that never reached Running (InvalidOperationException) after the host has stopped the other services;
        // what its partial start opened ends with the process.
        try
        {
            await host.StopAsync();
        }
        catch (InvalidOperationException stop)
        {
            logger.LogDebug(stop, "Stopping the silo that did not finish starting");
        }

        logger.LogInformation("Iris silo stopped (asked to stop before it finished starting)");
        return ExitCodes.Stopped;
    }
    catch (Exception e) when (e is OptionsValidationException or RelayEndpointException)
    {
        await Console.Error.WriteLineAsync($"Iris silo cannot start: {e.Message}");
        return ExitCodes.CannotStart;
    }
    catch (SocketException e)
    {
        var endpoints = host.Services.GetRequiredService<IOptions<Orleans.Configuration.EndpointOptions>>().Value;
        return await CannotListenAsync(endpoints.AdvertisedIPAddress, e);
    }

    LogReady(host, logger, configuration);

    // The host runs until it is asked to stop (Ctrl-C, SIGTERM) or its silo is declared dead (DeclaredDeadHandler). A
    // dead silo's graceful steps wait on silos that now refuse it, so they get a few seconds; should even the rest
    // hang, the process ends anyway: a dead silo that lingers helps nobody, and its supervisor starts a new one.
    var death = host.Services.GetRequiredService<SiloDeath>();
    var stopping = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    using (lifetime.ApplicationStopping.Register(() => stopping.TrySetResult()))
    {
        await Task.WhenAny(stopping.Task, death.Declared);
    }

    using (var graceful = new CancellationTokenSource(death.IsDeclared ? deadSiloGrace : Timeout.InfiniteTimeSpan))
    {
        var stopped = host.StopAsync(graceful.Token);
        if (death.IsDeclared && await Task.WhenAny(stopped, Task.Delay(deadSiloStopLimit)) != stopped)
        {
            ProgramLog.DeadSiloStuck(logger, deadSiloStopLimit);
            Environment.FailFast($"Iris silo declared dead did not stop within {deadSiloStopLimit}.");
        }

        await stopped;
    }

    if (!death.IsDeclared)
    {
        logger.LogInformation("Iris silo stopped");
        return ExitCodes.Stopped;
    }

    var silo = host.Services.GetRequiredService<Orleans.Runtime.ILocalSiloDetails>().SiloAddress.ToString();
    if (!development)
    {
        ProgramLog.ExitingDeclaredDead(logger, silo, ExitCodes.DeclaredDead);
        return ExitCodes.DeclaredDead;
    }

    ProgramLog.RestartingDeclaredDead(logger, silo, restarts + 1);
    return null;
}

// One block that says where the node is and how to reach it.
static void LogReady(IHost host, ILogger logger, IConfiguration configuration)
{
    var services = host.Services;
    var silo = services.GetRequiredService<Orleans.Runtime.ILocalSiloDetails>();
    var active = services.GetRequiredService<Orleans.Runtime.IClusterMembershipService>().CurrentSnapshot.Members.Values
        .Count(m => m.Status == Orleans.Runtime.SiloStatus.Active && !m.SiloAddress.Equals(silo.SiloAddress));
    var relay = services.GetService<RelayListener>()?.Endpoint is { } endpoint ? $"{endpoint} (Iris client libraries)" : "off";
    var http = services.GetService<IrisHttpAddress>()?.ToString() ?? "off";
    ProgramLog.Ready(
        logger,
        active == 0 ? "founded the network (no other silo is active)" : $"joined a network of {active} other active silo{(active == 1 ? string.Empty : "s")}",
        services.GetRequiredService<NetworkKey>().Fingerprint,
        configuration["Iris:Network:Key"] is { Length: > 0 } ? "Iris:Network:Key" : configuration["Iris:Network:KeyFile"] is { Length: > 0 } file ? file : "development key",
        services.GetRequiredService<IrisOverlay>().NodeDescription ?? "not started",
        silo.SiloAddress.ToString(),
        silo.GatewayAddress?.Endpoint.Port ?? 0,
        relay,
        http,
        services.GetService<IrisTelemetryTarget>()?.ToString() ?? "off (set Iris:Telemetry:OtlpEndpoint to export traces and metrics over OTLP)");
}

static async Task<int?> CannotListenAsync(System.Net.IPAddress? address, SocketException e)
{
    await Console.Error.WriteLineAsync(
        $"Iris silo cannot start: it cannot listen on {address}: {e.Message}. {IrisSiloOptions.AddressSetting} (by default the overlay's address) must be an address of this machine, and its ports free.");
    return ExitCodes.CannotStart;
}
