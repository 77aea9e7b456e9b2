using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace Iris.Silo;

/// <summary>
/// The node's HTTP endpoint. <c>/healthz/live</c> answers 200 while the process serves HTTP at all;
/// <c>/healthz/ready</c> answers 200 while the node is in its ring and active in the Orleans cluster, and 503 before
/// that and from the moment it starts shutting down (<see cref="IrisReadinessCheck"/>).
/// </summary>
internal static class IrisHttpEndpoint
{
    public const string LivePath = "/healthz/live";

    public const string ReadyPath = "/healthz/ready";

    private const string ReadyTag = "ready";

    /// <summary>Serves the endpoint on <paramref name="address"/>:<paramref name="port"/>.</summary>
    public static IWebHostBuilder UseIrisHttp(this IWebHostBuilder web, IPAddress address, int port) => web
        .UseKestrel(kestrel => kestrel.Listen(address, port))
        .ConfigureServices(services =>
        {
            services.AddSingleton(new IrisHttpAddress(new Uri($"http://{(address.Equals(IPAddress.Any) ? IPAddress.Loopback : address)}:{port}/")));
            services.AddRouting();
            services.AddHealthChecks().AddCheck<IrisReadinessCheck>("iris", tags: [ReadyTag]);
        })
        .Configure(app =>
        {
            app.UseRouting();
            app.UseEndpoints(endpoints =>
            {
                endpoints.MapHealthChecks(LivePath, new HealthCheckOptions { Predicate = _ => false });
                endpoints.MapHealthChecks(ReadyPath, new HealthCheckOptions { Predicate = check => check.Tags.Contains(ReadyTag) });
            });
        });
}

/// <summary>Where the node's HTTP endpoint is reached.</summary>
internal sealed record IrisHttpAddress(Uri Uri);
