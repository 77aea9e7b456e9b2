using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;
using Iris.Status;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Dashboard;

namespace Iris.Silo;

/// <summary>
/// The node's HTTP endpoint. <c>/healthz/live</c> answers 200 while the process serves HTTP at all;
/// <c>/healthz/ready</c> answers 200 while the node is in its ring and active in the Orleans cluster, and 503 before
/// that and from the moment it starts shutting down (<see cref="IrisReadinessCheck"/>). <c>/iris</c> is the Iris page
/// (the ring, the names and their members, traffic), drawn in the browser from <c>/iris/api/status</c>, the whole
/// network's status as JSON (<see cref="IrisNetworkStatus"/>); <c>/dashboard</c> is the Orleans dashboard.
/// </summary>
internal static class IrisHttpEndpoint
{
    public const string LivePath = "/healthz/live";

    public const string ReadyPath = "/healthz/ready";

    private const string ReadyTag = "ready";

    public const string IrisPagePath = "/iris";

    public const string StatusPath = "/iris/api/status";

    public const string DashboardPath = "/dashboard";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { Converters = { new JsonStringEnumConverter() } };

    /// <summary>Serves the endpoint on <paramref name="address"/>:<paramref name="port"/>, with the Orleans dashboard
    /// when <paramref name="dashboard"/> (the silo must then have it too: <c>AddDashboard</c>).</summary>
    public static IWebHostBuilder UseIrisHttp(this IWebHostBuilder web, IPAddress address, int port, bool dashboard) => web
        .UseKestrel(kestrel => kestrel.Listen(address, port))
        .ConfigureServices(services =>
        {
            services.AddSingleton(new IrisHttpAddress(new Uri($"http://{(address.Equals(IPAddress.Any) ? IPAddress.Loopback : address)}:{port}/"), dashboard));
            services.AddRouting();
            services.AddSingleton<NetworkStatusCache>();
            services.AddHealthChecks().AddCheck<IrisReadinessCheck>("iris", tags: [ReadyTag]);
        })
        .Configure(app =>
        {
            app.UseRouting();
            app.UseEndpoints(endpoints =>
            {
                endpoints.MapHealthChecks(LivePath, new HealthCheckOptions { Predicate = _ => false });
                endpoints.MapHealthChecks(ReadyPath, new HealthCheckOptions { Predicate = check => check.Tags.Contains(ReadyTag) });
                endpoints.MapGet(IrisPagePath, () => Results.Stream(IrisPage.Open(), "text/html; charset=utf-8"));
                endpoints.MapGet(StatusPath, StatusAsync);
                if (dashboard)
                {
                    endpoints.MapOrleansDashboard(DashboardPath);
                }
            });
        });

    /// <summary>The whole network's status, as this silo reads it; 503 with the reason while it cannot be read (the
    /// silo is not active in its cluster yet, or no longer).</summary>
    private static async Task<IResult> StatusAsync(NetworkStatusCache cache, ILocalSiloDetails silo, IrisHttpAddress address, CancellationToken cancellationToken)
    {
        try
        {
            var network = await cache.GetAsync().WaitAsync(cancellationToken);
            return Results.Json(new { Self = silo.SiloAddress.ToParsableString(), address.Dashboard, network.Taken, network.Silos, network.Unreachable }, Json);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return Results.Json(new { Self = silo.SiloAddress.ToParsableString(), Error = $"The network's status cannot be read now: {e.Message}" }, Json, statusCode: 503);
        }
    }
}

/// <summary>
/// The network's status, read at most once a second however many pages and requests ask: requests that come while a
/// read is under way, or within a second of the last, share it. A page refreshes every 2 s; without this, every open
/// page would have every silo asked every 2 s.
/// </summary>
internal sealed class NetworkStatusCache(IGrainFactory grains, TimeProvider time)
{
    public static readonly TimeSpan Freshness = TimeSpan.FromSeconds(1);

    private readonly Lock _gate = new();
    private Task<NetworkStatus>? _last;
    private long _started;

    public Task<NetworkStatus> GetAsync()
    {
        lock (_gate)
        {
            if (_last is null || (_last.IsCompleted && (!_last.IsCompletedSuccessfully || time.GetElapsedTime(_started) >= Freshness)))
            {
                _started = time.GetTimestamp();
                _last = IrisNetworkStatus.GetAsync(grains);
            }

            return _last;
        }
    }
}

/// <summary>The Iris page: one self-contained HTML file (no assets from elsewhere), built into the program.</summary>
internal static class IrisPage
{
    public static Stream Open() =>
        typeof(IrisPage).Assembly.GetManifestResourceStream("Iris.Silo.Pages.iris.html")
        ?? throw new InvalidOperationException("The Iris page is missing from the program (resource Iris.Silo.Pages.iris.html).");
}

/// <summary>Where the node's HTTP endpoint is reached.</summary>
internal sealed record IrisHttpAddress(Uri Uri, bool Dashboard)
{
    /// <summary>The endpoint's URL of <paramref name="path"/>.</summary>
    public string Of(string path) => Uri.AbsoluteUri.TrimEnd('/') + path;

    public override string ToString() =>
        $"{Uri} (Iris page {Of(IrisHttpEndpoint.IrisPagePath)}{(Dashboard ? $", dashboard {Of(IrisHttpEndpoint.DashboardPath)}/" : string.Empty)}, health {Of(IrisHttpEndpoint.ReadyPath)})";
}
