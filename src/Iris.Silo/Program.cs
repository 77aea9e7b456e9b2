using Iris.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

// An Iris node: one Orleans silo. Settings come from appsettings.json, environment variables
// (Iris__Silo__SiloPort=11112) and the command line (--Iris:Silo:SiloPort=11112). Ctrl-C stops it cleanly.
// appsettings.json is read next to the program, wherever it is started from.
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });
var options = builder.Configuration.GetSection(IrisSiloOptions.SectionName).Get<IrisSiloOptions>() ?? new IrisSiloOptions();
builder.UseOrleans(silo => silo.UseIris(options));

using var host = builder.Build();
var logger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Iris.Silo");
await host.StartAsync();
await host.WaitForShutdownAsync();
logger.LogInformation("Iris silo stopped");
